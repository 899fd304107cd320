// model.path naming a Hugging Face checkpoint: converted once into model.cache (a folder per checkpoint, named
// by a sha256 of its files, with a record beside it), scored like the explicit `model import-hf` of it, named
// with its files' sha256 in the run record; the checkpoint is never written to, and a cache entry dlc-prune
// cannot vouch for is refused, not reused or removed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import { run } from "../../src/run/pipeline.js";
import { scoreOnly } from "../../src/run/score.js";
import { runCli } from "../helpers/cli.js";
import { testConfig } from "../helpers/config.js";
import { alpacaRows, snapshot, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { writeCheckpoint } from "../helpers/hf-checkpoint.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-ckpt-");
let ckpt: string;
let data: string;

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeAll(async () => {
  const tiny = await tinyModel();
  ckpt = writeCheckpoint(join(tmp, "ckpt"), tiny, { dtype: "BF16", shards: 2 });
  data = writeJsonl(join(tmp, "rows.jsonl"), alpacaRows(10));
}, 120_000);

const config = (dir: string, extra: Record<string, unknown> = {}) =>
  testConfig({
    "data.path": data,
    "model.path": ckpt,
    "score.levels": 2,
    "score.out": join(dir, "scores.arrow"),
    "select.ratios": [0.5],
    "select.out_dir": dir,
    ...extra,
  });

describe("model.path naming a Hugging Face checkpoint", () => {
  it("is converted once into models/ beside score.out, scored like its explicit import, and named in the run record", async () => {
    const before = snapshot(ckpt);
    const dir = join(tmp, "run");
    const logs: string[] = [];
    const result = await run(config(dir), { log: (l) => logs.push(l) });
    expect(result.kind).toBe("selected");
    expect(logs.some((l) => l.startsWith("converting it to"))).toBe(true);
    const entries = readdirSync(join(dir, "models"));
    expect(entries).toHaveLength(2); // the converted folder and its record
    const { meta, cols } = await readScoresFile(join(dir, "scores.arrow"));
    const record = meta;
    expect(record.model.checkpoint!.path).toBe(ckpt);
    const files = readdirSync(ckpt)
      .filter((f) => /\.(json|safetensors)$/.test(f))
      .sort();
    expect(record.model.checkpoint!.sha256).toEqual(Object.fromEntries(files.map((f) => [f, sha256(join(ckpt, f))])));
    expect(snapshot(ckpt)).toEqual(before);

    // The same scores as the folder `model import-hf` writes.
    const imported = join(tmp, "imported");
    expect(runCli(["model", "import-hf", "--checkpoint", ckpt, "--out", imported]).status).toBe(0);
    await scoreOnly(
      testConfig({ "data.path": data, "model.path": imported, "score.levels": 2, "score.out": join(tmp, "explicit.arrow") }),
      {
        log: () => {},
      },
    );
    const explicit = (await readScoresFile(join(tmp, "explicit.arrow"))).cols;
    cols.losses.forEach((l, i) => expect(Math.abs(l - explicit.losses[i]!), `loss ${i}`).toBeLessThan(1e-6));

    // A second run uses the conversion, and finds its scores up to date.
    const again: string[] = [];
    await run(config(dir), { log: (l) => again.push(l) });
    expect(again.some((l) => l.startsWith("using ") && l.includes("converted from it earlier"))).toBe(true);
    expect(again.some((l) => l.includes("is up to date"))).toBe(true);
    expect(readdirSync(join(dir, "models"))).toEqual(entries);
  }, 240_000);

  it("refuses a cache entry without its record, or with another checkpoint's, and a cache inside the checkpoint", async () => {
    const dir = join(tmp, "refusals");
    const cache = join(dir, "cache");
    const quiet = { log: () => {} };
    await scoreOnly(config(dir, { "model.cache": cache }), quiet);
    const [folder, recordFile] = readdirSync(cache).sort((a, b) => a.length - b.length);
    // The record gone: the folder is an interrupted conversion as far as dlc-prune can tell.
    const saved = readFileSync(join(cache, recordFile!));
    rmSync(join(cache, recordFile!));
    await expect(scoreOnly(config(dir, { "model.cache": cache }), quiet)).rejects.toThrow(
      `${join(cache, folder!)}: a converted model without its record`,
    );
    expect(existsSync(join(cache, folder!, "onnx/model.onnx"))).toBe(true);
    // A record of other files.
    const other = JSON.parse(saved.toString());
    other.checkpoint.sha256["config.json"] = "0".repeat(64);
    writeFileSync(join(cache, recordFile!), JSON.stringify(other));
    await expect(scoreOnly(config(dir, { "model.cache": cache }), quiet)).rejects.toThrow(`${join(cache, recordFile!)}: does not record`);
    writeFileSync(join(cache, recordFile!), "{ truncated");
    await expect(scoreOnly(config(dir, { "model.cache": cache }), quiet)).rejects.toThrow("not valid JSON");

    const before = snapshot(ckpt);
    await expect(scoreOnly(config(join(tmp, "inside"), { "model.cache": join(ckpt, "cache") }), quiet)).rejects.toThrow(
      `model.cache ${join(ckpt, "cache")} is inside the checkpoint folder (model.path) ${ckpt}`,
    );
    expect(snapshot(ckpt)).toEqual(before);
  }, 240_000);

  it("a damaged checkpoint is refused in one line naming the file, and leaves nothing in the cache", async () => {
    const copy = join(tmp, "ckpt-damaged");
    mkdirSync(copy);
    for (const f of readdirSync(ckpt)) writeFileSync(join(copy, f), readFileSync(join(ckpt, f)));
    const shard = readdirSync(copy).find((f) => f.endsWith(".safetensors"))!;
    const bytes = readFileSync(join(copy, shard));
    writeFileSync(join(copy, shard), bytes.subarray(0, bytes.length - 100));
    const cache = join(tmp, "damaged-cache");
    const error = await scoreOnly(config(join(tmp, "damaged"), { "model.path": copy, "model.cache": cache }), { log: () => {} }).catch(
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(join(copy, shard));
    expect((error as Error).message).not.toContain("\n");
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
  }, 240_000);

  it("a changed checkpoint file is another checkpoint: converted again", async () => {
    const copy = join(tmp, "ckpt-copy");
    mkdirSync(copy);
    for (const f of readdirSync(ckpt)) writeFileSync(join(copy, f), readFileSync(join(ckpt, f)));
    const cache = join(tmp, "changed-cache");
    const quiet = { log: () => {} };
    await scoreOnly(config(join(tmp, "changed"), { "model.path": copy, "model.cache": cache }), quiet);
    const cfg = JSON.parse(readFileSync(join(copy, "generation_config.json"), "utf8"));
    writeFileSync(join(copy, "generation_config.json"), JSON.stringify({ ...cfg, do_sample: true }));
    await scoreOnly(config(join(tmp, "changed"), { "model.path": copy, "model.cache": cache }), quiet);
    expect(readdirSync(cache)).toHaveLength(4);
  }, 240_000);
});
