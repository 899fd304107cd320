// `dlc-prune model ...` end to end: the folder it writes, and bad input (one-line error naming the file,
// non-zero exit, nothing half-written left behind).
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { STORIES_BIN, STORIES_TOK, describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();

/** Asserts a one-line user error mentioning every `mention`, exit 1, and no output folder or temp left over. */
function expectUserError(r: ReturnType<typeof runCli>, mentions: string[], out?: string): void {
  expect(r.status, r.stderr).toBe(1);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => !l.startsWith("npm warn"));
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^dlc-prune: error: /);
  for (const m of mentions) expect(lines[0]).toContain(m);
  if (out) expect(existsSync(out)).toBe(false);
  expect(readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
}

describe("dlc-prune model tiny", () => {
  it("writes the Hugging Face / Optimum layout", () => {
    const out = join(tmp, "tiny");
    const r = runCli([
      "model",
      "tiny",
      "--out",
      out,
      "--layers",
      "1",
      "--hidden",
      "32",
      "--heads",
      "4",
      "--kv-heads",
      "1",
      "--tie-embeddings",
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("1 layers, hidden 32, heads 4/1, vocab 512");
    for (const f of [
      "config.json",
      "generation_config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "special_tokens_map.json",
      "onnx/model.onnx",
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg).toMatchObject({
      model_type: "llama",
      num_hidden_layers: 1,
      hidden_size: 32,
      num_key_value_heads: 1,
      tie_word_embeddings: true,
      vocab_size: 512,
    });
  });

  it("is deterministic for a seed", () => {
    const a = join(tmp, "seed-a");
    const b = join(tmp, "seed-b");
    const c = join(tmp, "seed-c");
    expect(runCli(["model", "tiny", "--out", a, "--seed", "5"]).status).toBe(0);
    expect(runCli(["model", "tiny", "--out", b, "--seed", "5"]).status).toBe(0);
    expect(runCli(["model", "tiny", "--out", c, "--seed", "6"]).status).toBe(0);
    const onnx = (d: string) => readFileSync(join(d, "onnx/model.onnx"));
    expect(onnx(a).equals(onnx(b))).toBe(true);
    expect(onnx(a).equals(onnx(c))).toBe(false);
  });

  it("refuses a non-empty output folder, leaving it untouched", () => {
    const out = join(tmp, "occupied");
    mkdirSync(out);
    writeFileSync(join(out, "mine.txt"), "keep me");
    const r = runCli(["model", "tiny", "--out", out]);
    expectUserError(r, [out, "not empty"]);
    expect(readdirSync(out)).toEqual(["mine.txt"]);
  });

  it("rejects impossible shapes", () => {
    const out = join(tmp, "bad-shape");
    expectUserError(runCli(["model", "tiny", "--out", out, "--hidden", "30", "--heads", "4"]), ["hidden size 30", "heads 4"], out);
    expectUserError(runCli(["model", "tiny", "--out", out, "--vocab", "100"]), ["--vocab 100 is too small"], out);
  });
});

describeWithShared("dlc-prune model import-llama2c", () => {
  const ckpt = readFileSync(STORIES_BIN);

  it("imports stories260K", () => {
    const out = join(tmp, "stories");
    const r = runCli(["model", "import-llama2c", "--checkpoint", STORIES_BIN, "--tokenizer", STORIES_TOK, "--out", out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("5 layers, hidden 64, heads 8/4, vocab 512");
  });

  it("rejects a truncated checkpoint", () => {
    const bad = join(tmp, "truncated.bin");
    writeFileSync(bad, ckpt.subarray(0, ckpt.length - 100));
    const out = join(tmp, "out-truncated");
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", bad, "--tokenizer", STORIES_TOK, "--out", out]),
      [bad, "truncated checkpoint"],
      out,
    );
  });

  it("rejects a checkpoint with extra bytes", () => {
    const bad = join(tmp, "long.bin");
    writeFileSync(bad, Buffer.concat([ckpt, Buffer.alloc(8)]));
    const out = join(tmp, "out-long");
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", bad, "--tokenizer", STORIES_TOK, "--out", out]),
      [bad, "wrong-size checkpoint"],
      out,
    );
  });

  it("rejects a header too short to read", () => {
    const bad = join(tmp, "tiny.bin");
    writeFileSync(bad, ckpt.subarray(0, 10));
    const out = join(tmp, "out-tiny");
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", bad, "--tokenizer", STORIES_TOK, "--out", out]),
      [bad, "truncated checkpoint"],
      out,
    );
  });

  it("rejects a tokenizer whose vocab size differs from the checkpoint's", () => {
    // The same checkpoint claiming vocab 500: sizes are rewritten consistently, so only the tokenizer disagrees.
    const header = new Int32Array(ckpt.buffer.slice(ckpt.byteOffset, ckpt.byteOffset + 28));
    const dim = header[0]!;
    header[5] = 500;
    const body = ckpt.subarray(28 + 512 * dim * 4);
    const bad = join(tmp, "vocab500.bin");
    writeFileSync(bad, Buffer.concat([Buffer.from(header.buffer), Buffer.alloc(500 * dim * 4), body]));
    const out = join(tmp, "out-vocab");
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", bad, "--tokenizer", STORIES_TOK, "--out", out]),
      [STORIES_TOK, "more than 500 tokens"],
      out,
    );

    const shortTok = join(tmp, "short-tok.bin");
    writeFileSync(shortTok, readFileSync(STORIES_TOK).subarray(0, 2000));
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", STORIES_BIN, "--tokenizer", shortTok, "--out", out]),
      [shortTok, "vocab size is 512"],
      out,
    );
  });

  it("names a missing file", () => {
    const out = join(tmp, "out-missing");
    const missing = join(tmp, "nope.bin");
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", missing, "--tokenizer", STORIES_TOK, "--out", out]),
      [missing, "not found"],
      out,
    );
    expectUserError(
      runCli(["model", "import-llama2c", "--checkpoint", STORIES_BIN, "--tokenizer", missing, "--out", out]),
      [missing, "not found"],
      out,
    );
  });

  it("a missing required flag is a one-line usage error", () => {
    const r = runCli(["model", "import-llama2c", "--checkpoint", STORIES_BIN]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Missing required argument");
  });
});
