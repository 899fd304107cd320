// Which weights are masked, how many at each level, and the model folder errors.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder, DataType, encodeModel } from "../../src/model/onnx.js";
import { loadScoringModel } from "../../src/model/scoring-graph.js";
import { MaskSchedule } from "../../src/score/masking.js";
import { countZeros, cumulativeCounts } from "../reference/masking.js";
import { describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";
import { storiesModel, tinyModel } from "../helpers/fixtures.js";

const tmp = tempDir();
const none = { include: [], exclude: [] };
const BLOCK = [
  "self_attn.q_proj",
  "self_attn.k_proj",
  "self_attn.v_proj",
  "self_attn.o_proj",
  "mlp.gate_proj",
  "mlp.up_proj",
  "mlp.down_proj",
];
const blockNames = (layers: number) =>
  Array.from({ length: layers }, (_, l) => BLOCK.map((m) => `model.layers.${l}.${m}.MatMul.weight`)).flat();

describe("maskable weights", () => {
  let untied: string;
  let tied: string;
  beforeAll(async () => {
    untied = await tinyModel({ layers: 2 });
    tied = await tinyModel({ layers: 2, tie_embeddings: true, externalData: true });
  });

  it("are the decoder blocks' MatMul weights: not the LM head, not the embedding", async () => {
    for (const dir of [untied, tied]) {
      const m = await loadScoringModel(dir, none);
      expect(m.maskable.map((w) => w.name)).toEqual(blockNames(2));
      // The views hold the initializers' values.
      const q = m.maskable[0]!;
      expect(q.dims).toEqual([64, 64]);
      expect(q.data.length).toBe(64 * 64);
    }
  });

  it("include / exclude patterns override", async () => {
    const m = await loadScoringModel(untied, { include: ["lm_head.*"], exclude: ["*.mlp.*", "model.layers.1.*"] });
    expect(m.maskable.map((w) => w.name)).toEqual([
      "model.layers.0.self_attn.q_proj.MatMul.weight",
      "model.layers.0.self_attn.k_proj.MatMul.weight",
      "model.layers.0.self_attn.v_proj.MatMul.weight",
      "model.layers.0.self_attn.o_proj.MatMul.weight",
      "lm_head.MatMul.weight",
    ]);
    await expect(loadScoringModel(untied, { include: [], exclude: ["*"] })).rejects.toThrow("no maskable weights");
  });

  it("a quantized export is refused, naming the fp32/fp16 exports", async () => {
    const dir = join(tmp, "quantized");
    mkdirSync(join(dir, "onnx"), { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) writeFileSync(join(dir, f), readFileSync(join(untied, f)));
    const g = new GraphBuilder();
    const x = g.input("input_ids", DataType.INT64, [1, 1]);
    const w = g.initializer("w", DataType.UINT8, [4, 4], new Uint8Array(16));
    g.op1("MatMulNBits", [x, w], {}, "logits");
    g.output("logits", DataType.FLOAT, [1, 1, 4]);
    writeFileSync(join(dir, "onnx/model.onnx"), encodeModel(g.toModel({ name: "q", opset: 17, producer: "test" })));
    await expect(loadScoringModel(dir, none)).rejects.toThrow(
      /onnx\/model\.onnx: a quantized model \(MatMulNBits\).*fp32 \(onnx\/model\.onnx\) or fp16/,
    );
  });

  it("an incomplete model folder names the missing file", async () => {
    const dir = join(tmp, "incomplete");
    mkdirSync(join(dir, "onnx"), { recursive: true });
    writeFileSync(join(dir, "config.json"), "{}");
    writeFileSync(join(dir, "tokenizer.json"), "{}");
    writeFileSync(join(dir, "tokenizer_config.json"), "{}");
    await expect(loadScoringModel(dir, none)).rejects.toThrow(`${dir}: incomplete model folder: missing onnx/model.onnx`);
    rmSync(join(dir, "tokenizer.json"));
    await expect(loadScoringModel(dir, none)).rejects.toThrow("missing tokenizer.json");
    await expect(loadScoringModel(join(tmp, "nowhere"), none)).rejects.toThrow("model folder not found");
    const ext = join(tmp, "no-data");
    cpSync(await tinyModel({ externalData: true }), ext, { recursive: true });
    rmSync(join(ext, "onnx/model.onnx_data"));
    await expect(loadScoringModel(ext, none)).rejects.toThrow(`${join(ext, "onnx/model.onnx_data")}: file not found`);
  });
});

describeWithShared("zeroed weights per level on stories260K", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await storiesModel();
  });

  for (const scope of ["layer", "global"] as const)
    it(`equal the recurrence (${scope}, interval 0.2, 6 levels)`, async () => {
      const m = await loadScoringModel(dir, none);
      const data = m.maskable.map((w) => w.data as Float32Array);
      expect(data.map(countZeros).every((z) => z === 0)).toBe(true); // trained weights: no exact zeros to begin with
      const schedule = new MaskSchedule(m.maskable, { file: "test", scope, method: "l1", interval: 0.2, levels: 6, seed: 0 });
      const total = data.reduce((a, d) => a + d.length, 0);
      expect(total).toBe(5 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 172));
      for (let k = 0; k < 6; k++) {
        await schedule.applyLevel(k);
        const zeros = data.map(countZeros);
        if (scope === "layer")
          data.forEach((d, i) => expect(zeros[i], `${m.maskable[i]!.name} level ${k}`).toBe(cumulativeCounts(d.length, 0.2, 6)[k]));
        else expect(zeros.reduce((a, b) => a + b, 0)).toBe(cumulativeCounts(total, 0.2, 6)[k]);
      }
    });
});

describe("going back to the unmasked weights (score.refine)", () => {
  it("reads them again from the model's files, inline or external, and refuses a file changed since it was hashed", async () => {
    for (const externalData of [false, true]) {
      const src = await tinyModel({ layers: 2, externalData });
      const dir = join(tmp, `restore-${externalData}`);
      cpSync(src, dir, { recursive: true });
      const m = await loadScoringModel(dir, none);
      const unmasked = m.maskable.map((w) => w.data.slice());
      const schedule = new MaskSchedule(m.maskable, {
        file: "test",
        scope: "layer",
        method: "l1",
        interval: 0.3,
        levels: 3,
        seed: 0,
        restore: m.restoreMaskable,
      });
      await schedule.applyLevel(2);
      expect(m.maskable.every((w, i) => countZeros(w.data as Float32Array) > countZeros(unmasked[i] as Float32Array))).toBe(true);
      await schedule.applyLevel(0);
      m.maskable.forEach((w, i) => expect(Buffer.from(w.buffer.data).equals(Buffer.from(unmasked[i]!.buffer)), w.name).toBe(true));
      await schedule.applyLevel(1);
      // The same file, one byte changed: the weights it holds are no longer the run's.
      const file = join(dir, externalData ? "onnx/model.onnx_data" : "onnx/model.onnx");
      const bytes = readFileSync(file);
      bytes[bytes.length - 5]! ^= 1;
      writeFileSync(file, bytes);
      await expect(schedule.applyLevel(0)).rejects.toThrow(`${file}: changed while it was being scored`);
    }
  });
});
