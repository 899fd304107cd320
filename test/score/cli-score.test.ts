// `dlc-prune score` end to end on a tiny model: flags, the Arrow file's schema and metadata, errors.
import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { join, resolve } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { readScoresFile } from "../../src/contract/file.js";
import { tempDir } from "../helpers/tmp.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";

const tmp = tempDir();
let model: string;
let data: string;

beforeAll(async () => {
  model = await tinyModel({ vocab: 600 });
  data = join(tmp, "pairs.jsonl");
  const rows = [
    { prompt: "Write a short story.", response: "Once there was a small city." },
    { prompt: "What is water?", response: "" },
    { prompt: "List two colors.", response: "Blue and green." },
  ];
  writeJsonl(data, rows);
});

function oneLineError(r: ReturnType<typeof runCli>, ...mentions: string[]): void {
  expect(r.status, r.stdout + r.stderr).toBe(1);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("dlc-prune: error: "));
  expect(lines, r.stderr).toHaveLength(1);
  for (const m of mentions) expect(lines[0]).toContain(m);
}

describe("dlc-prune score", () => {
  it("--format prompt_response on a JSONL of exactly prompt and response", () => {
    const out = join(tmp, "pairs.arrow");
    const r = runCli([
      "score",
      "--data",
      data,
      "--model",
      model,
      "--out",
      out,
      "--format",
      "prompt_response",
      "--levels",
      "4",
      "--interval",
      "0.25",
      "--scope",
      "global",
      "--method",
      "random",
      "--seed",
      "7",
      "--batch-tokens",
      "64",
      "--device",
      "cpu",
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("device: cpu");
    const table = tableFromIPC(readFileSync(out));
    expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual([
      "row:Int64",
      "dlc:Float64",
      "losses:FixedSizeList[4]<Float32>",
      "tokens:Int32",
      "status:Utf8",
      "loss0:Float64",
      "duplicate:Bool",
      "duplicate_of:Int64",
      "duplicate_pair_of:Int64",
      "outlier:Bool",
    ]);
    expect(table.numRows).toBe(3);
    expect(Array.from(table.getChild("row")!.toArray())).toEqual([0n, 1n, 2n]);
    expect(Array.from(table.getChild("status")!.toArray())).toEqual(["ok", "empty-response", "ok"]);
    expect(table.getChild("dlc")!.isValid(1)).toBe(false);
    expect(table.getChild("losses")!.get(1)).toBeNull();
    const losses = Array.from((table.getChild("losses")!.get(0) as { toArray(): Float32Array }).toArray());
    expect(table.getChild("dlc")!.get(0)).toBeCloseTo(losses.reduce((a, b) => a + b, 0) / 4, 6);
    expect(losses[3]).not.toBeCloseTo(losses[0]!, 4); // masking changed the loss

    const meta = JSON.parse(table.schema.metadata.get("dlc_prune")!);
    const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
    expect(meta).toMatchObject({
      tool: "dlc-prune",
      model: { path: resolve(model), sha256: { "onnx/model.onnx": sha(join(model, "onnx/model.onnx")) } },
      data: { path: data, sha256: sha(data), rows: 3, format: "prompt_response" },
      tokens: { template: "none" },
      masking: { levels: 4, method: "random", scope: "global", interval: 0.25, seed: 7 },
      shard: null,
    });
    expect(meta.masking.sparsities).toEqual([0, 0.25, 0.4375, 0.578125].map((x) => expect.closeTo(x, 5)));
    expect(meta.version).toBe(JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version);
  });

  it("an id column when data.fields.id is set; same inputs give the same bytes", () => {
    const withIds = join(tmp, "ids.jsonl");
    writeFileSync(
      withIds,
      ["a", "b"].map((id, i) => JSON.stringify({ id, instruction: `Task ${i}`, input: "", output: "Done." })).join("\n") + "\n",
    );
    const outs = [join(tmp, "ids-1.arrow"), join(tmp, "ids-2.arrow")];
    for (const out of outs)
      expect(runCli(["score", "--data", withIds, "--model", model, "--out", out, "--set", "data.fields.id=id"]).status).toBe(0);
    const table = tableFromIPC(readFileSync(outs[0]!));
    expect(Array.from(table.getChild("id")!.toArray())).toEqual(["a", "b"]);
    expect(readFileSync(outs[0]!).equals(readFileSync(outs[1]!))).toBe(true);
  });

  it("a changed tokenizer (same ONNX) is not taken for an up-to-date scores file", () => {
    const copy = join(tmp, "tiny-copy");
    cpSync(model, copy, { recursive: true });
    const out = join(tmp, "retok.arrow");
    const args = ["score", "--data", data, "--model", copy, "--out", out];
    expect(runCli(args).status).toBe(0);
    expect(runCli(args).stderr).toContain("is up to date");
    const tj = join(copy, "tokenizer.json");
    const tokenizer = JSON.parse(readFileSync(tj, "utf8"));
    tokenizer.model.merges = tokenizer.model.merges.slice(0, 20); // coarser tokens
    writeFileSync(tj, JSON.stringify(tokenizer));
    const again = runCli(args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("is up to date");
  });

  it("a non-finite loss is no score, and says so", async () => {
    const broken = join(tmp, "tiny-nan");
    cpSync(model, broken, { recursive: true });
    const path = join(broken, "onnx/model.onnx");
    const proto = fromBinary(ModelProtoSchema, readFileSync(path));
    const head = proto.graph!.initializer.find((t) => t.name === "lm_head.MatMul.weight")!;
    const values = new Float32Array(new Uint8Array(head.rawData).buffer); // a copy: rawData views the file buffer
    values.fill(NaN, 0, 64 * 5); // the head is not masked: every level's logits are NaN
    head.rawData = new Uint8Array(values.buffer);
    writeFileSync(path, toBinary(ModelProtoSchema, proto));
    const out = join(tmp, "nan.arrow");
    expect(runCli(["score", "--data", data, "--model", broken, "--out", out]).status).toBe(0);
    const table = tableFromIPC(readFileSync(out));
    expect(Array.from(table.getChild("status")!.toArray())).toEqual(["non-finite-loss", "empty-response", "non-finite-loss"]);
    expect(table.getChild("dlc")!.nullCount).toBe(3);
  });

  it("the window comes from config.json (max_position_embeddings, or GPT-2's n_positions / n_ctx); without one, score.max_tokens", async () => {
    const noMax = join(tmp, "tiny-nomax");
    cpSync(model, noMax, { recursive: true });
    const cfgPath = join(noMax, "config.json");
    const { max_position_embeddings: window, ...cfg } = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify(cfg));
    oneLineError(
      runCli(["score", "--data", data, "--model", noMax, "--out", join(tmp, "nomax.arrow")]),
      "gives no window (max_position_embeddings, n_positions or n_ctx): set score.max_tokens",
    );
    expect(runCli(["score", "--data", data, "--model", noMax, "--out", join(tmp, "nomax.arrow"), "--max-tokens", "64"]).status).toBe(0);
    for (const key of ["n_positions", "n_ctx"]) {
      writeFileSync(cfgPath, JSON.stringify({ ...cfg, [key]: window }));
      const out = join(tmp, `${key}.arrow`);
      expect(runCli(["score", "--data", data, "--model", noMax, "--out", out]).status, key).toBe(0);
      expect((await readScoresFile(out)).meta.tokens.max_tokens).toBe(window);
    }
  });

  it("bad input: one-line errors, non-zero exit, no output", () => {
    const out = join(tmp, "never.arrow");
    const bad = join(tmp, "bad.jsonl");
    writeFileSync(bad, '{"prompt": "a", "response": "b"}\n{"prompt": "a"\n');
    oneLineError(runCli(["score", "--data", bad, "--model", model, "--out", out]), `${bad}:2: malformed JSON`);
    oneLineError(runCli(["score", "--data", data, "--model", join(tmp, "nope"), "--out", out]), "model folder not found");
    oneLineError(runCli(["score", "--data", join(tmp, "absent.jsonl"), "--model", model, "--out", out]), "absent.jsonl: file not found");
    oneLineError(runCli(["score", "--data", data, "--model", model, "--out", out, "--set", "score.bogus=1"]), "unknown key score.bogus");
    oneLineError(runCli(["score", "--data", data, "--model", model, "--out", out, "--interval", "1.5"]), "key score.interval");
    oneLineError(runCli(["score", "--model", model, "--out", out]), "key data.path");
    oneLineError(runCli(["score", "--data", data, "--model", model, "--out", out, "--device", "cuda"]), "score.device cuda");
    oneLineError(
      runCli(["score", "--data", data, "--model", model, "--out", out, "--max-tokens", "100000"]),
      "exceeds the model's max positions 512",
    );
    expect(existsSync(out)).toBe(false);
  });
});
