// fp16 weights: conversion, an fp16 export that matches its fp32 twin, and DLC on fp16 initializers.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { toFloat16Bits } from "../../src/model/onnx.js";
import { loadScoringModel } from "../../src/model/scoring-graph.js";
import { MaskSchedule } from "../../src/score/masking.js";
import { scoreOnly } from "../../src/run/score.js";
import { readScoresFile } from "../../src/contract/file.js";
import { decodeHalf } from "../reference/fp16.js";
import { cumulativeCounts } from "../reference/masking.js";
import { lcg, tinyModel } from "../helpers/fixtures.js";
import { batchFeeds, batchLogits, readFolderConfig } from "../helpers/onnx-llama.js";
import { quiet, testConfig } from "../helpers/config.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();

describe("toFloat16Bits", () => {
  it("rounds to the nearest fp16, ties to even, with subnormals, overflow, inf and nan", () => {
    const rnd = lcg(12345);
    const values = Float32Array.from(
      { length: 20000 },
      (_, i) => (rnd() - 0.5) * 2 ** Math.floor(rnd() * 44 - 30) * (i % 7 === 0 ? 1e-3 : 1),
    );
    const edge = [
      0,
      -0,
      65504,
      65520,
      65519,
      1e6,
      -1e6,
      2 ** -24,
      2 ** -25,
      1.5 * 2 ** -25,
      2 ** -14,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      Infinity,
      -Infinity,
    ];
    const all = Float32Array.from([...values, ...edge]);
    const halves = toFloat16Bits(all);
    all.forEach((x, i) => {
      const h = halves[i]!;
      const v = decodeHalf(h);
      if (Math.abs(x) >= 65520) return expect(v).toBe(x > 0 ? Infinity : -Infinity);
      // No other fp16 is nearer; at a tie the even mantissa wins.
      for (const other of [h - 1, h + 1].filter((o) => (o & 0x7fff) < 0x7c00 && o >= 0 && (o & 0x8000) === (h & 0x8000))) {
        const d = Math.abs(x - v);
        const o = Math.abs(x - decodeHalf(other));
        expect(d <= o, `${x}: ${v} vs ${decodeHalf(other)}`).toBe(true);
        if (d === o) expect(h & 1).toBe(0);
      }
    });
    expect(Array.from(toFloat16Bits(Float32Array.from([NaN])), (h) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0)).toEqual([true]);
  });
});

describe("an fp16 export", () => {
  let fp32: string;
  let fp16: string;
  beforeAll(async () => {
    fp32 = await tinyModel({ seed: 4 });
    fp16 = await tinyModel({ seed: 4, dtype: "fp16" });
  });

  it("computes the logits of its fp32 twin within fp16 precision", async () => {
    const ids = [
      [1, 300, 301, 302, 303, 304, 305],
      [1, 310, 311, 0, 0, 0, 0],
    ];
    const mask = ids.map((r, b) => r.map((_, i) => (b === 1 && i >= 3 ? 0 : 1)));
    const run = async (dir: string) => {
      const session = await ort.InferenceSession.create(join(dir, "onnx/model.onnx"));
      const cfg = readFolderConfig(dir);
      if (dir === fp16) {
        const out = await session.run(batchFeeds(cfg, ids, mask, "float16"));
        return Array.from((out.logits as ort.Tensor).data as Uint16Array, decodeHalf);
      }
      return (await batchLogits(session, cfg, ids, mask)).flat().flatMap((a) => Array.from(a));
    };
    const a = await run(fp32);
    const b = await run(fp16);
    const real = mask.flatMap((r) => r.flatMap((m) => Array(512).fill(m) as number[]));
    let maxDiff = 0;
    a.forEach((v, i) => real[i] && (maxDiff = Math.max(maxDiff, Math.abs(v - b[i]!))));
    expect(maxDiff).toBeLessThan(5e-3);
    expect(maxDiff).toBeGreaterThan(0); // really computed in fp16
  });

  it("is scored on its fp16 initializers: exact mask counts, losses near the fp32 twin's", async () => {
    const model = await loadScoringModel(fp16, { include: [], exclude: [] });
    expect(model.maskable.every((w) => w.data instanceof Uint16Array)).toBe(true);
    const schedule = new MaskSchedule(model.maskable, { file: "test", scope: "layer", method: "l1", interval: 0.2, levels: 3, seed: 0 });
    for (let k = 0; k < 3; k++) {
      await schedule.applyLevel(k);
      for (const w of model.maskable)
        expect(Array.from(w.data).filter((h) => (h & 0x7fff) === 0).length).toBe(cumulativeCounts(w.data.length, 0.2, 3)[k]);
    }
    const data = join(tmp, "rows.jsonl");
    writeFileSync(
      data,
      ["Write a short story.", "List three colors of the world.", "What is water?"]
        .map((p) => JSON.stringify({ prompt: p, response: "The small city has a good plan for the people." }))
        .join("\n"),
    );
    const losses: Float32Array[] = [];
    for (const dir of [fp32, fp16]) {
      const out = join(tmp, `${dir === fp16 ? "fp16" : "fp32"}.arrow`);
      await scoreOnly(testConfig({ "data.path": data, "model.path": dir, "score.out": out }), quiet);
      losses.push((await readScoresFile(out)).cols.losses);
    }
    losses[0]!.forEach((v, i) => expect(Math.abs(v - losses[1]![i]!)).toBeLessThan(2e-2));
  });
});
