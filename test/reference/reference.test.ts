// Sanity tests of the independent reference implementations themselves.
import { describe, it, expect } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { randomLlama2cModel, readLlama2cCheckpoint, writeLlama2cCheckpoint, type Llama2cConfig } from "./llama2c-checkpoint.js";
import { forwardHfLlama, forwardLlama2c, llama2cToHf } from "./llama-forward.js";
import { decodeSequenceLlama2c, encodeLlama2c, loadLlama2cTokenizer } from "./llama2c-encoder.js";
import { bf16Bits, f16Bits } from "./safetensors.js";
import { countZeros, cumulativeCounts, pyRound, referenceMaskedLevels } from "./masking.js";

const small: Llama2cConfig = {
  dim: 16,
  hiddenDim: 40,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 32,
  seqLen: 16,
  sharedClassifier: true,
};

function maxAbsDiff(a: Float64Array[], b: Float64Array[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, t) => row.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[t]![i]!)))));
  return m;
}

const argmax = (a: Float64Array): number => a.reduce((bi, v, i) => (v > a[bi]! ? i : bi), 0);

describe("llama2c checkpoint reference", () => {
  it("round-trips shared and unshared checkpoints", () => {
    for (const shared of [true, false]) {
      const m = randomLlama2cModel({ ...small, sharedClassifier: shared }, 7);
      const buf = writeLlama2cCheckpoint(m);
      const r = readLlama2cCheckpoint(buf);
      expect(r.config).toEqual(m.config);
      expect(new DataView(buf.buffer).getInt32(20, true)).toBe(shared ? 32 : -32);
      expect(Array.from(r.weights.wq)).toEqual(Array.from(m.weights.wq));
      expect(Array.from(r.weights.wcls)).toEqual(Array.from(m.weights.wcls));
      expect(r.weights.wcls === r.weights.token_embedding_table).toBe(shared);
    }
  });

  it("throws on truncation", () => {
    const buf = writeLlama2cCheckpoint(randomLlama2cModel({ ...small, sharedClassifier: false }, 1));
    expect(() => readLlama2cCheckpoint(buf.subarray(0, buf.length - 4))).toThrow(/truncated/);
    expect(() => readLlama2cCheckpoint(buf.subarray(0, 12))).toThrow(/truncated/);
  });
});

describe("llama forward references", () => {
  const tokens = [1, 5, 9, 31, 0, 17, 17];

  it("HF conversion reproduces llama2.c logits (shared and untied)", () => {
    for (const shared of [true, false]) {
      const m = randomLlama2cModel({ ...small, sharedClassifier: shared }, 42);
      const { cfg, w } = llama2cToHf(m);
      const a = forwardLlama2c(m, tokens);
      const b = forwardHfLlama(cfg, w, tokens);
      expect(a).toHaveLength(tokens.length);
      expect(a[0]).toHaveLength(32);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-9);
      const p = [3, 4, 5];
      expect(maxAbsDiff(forwardLlama2c(m, tokens.slice(0, 3), p), forwardHfLlama(cfg, w, tokens.slice(0, 3), p))).toBeLessThan(1e-9);
    }
  });

  it("positions matter and prefixes are causal", () => {
    const m = randomLlama2cModel(small, 3);
    const at0 = forwardLlama2c(m, [4, 8, 15]);
    // RoPE only sees relative offsets: a uniform shift of all positions leaves logits unchanged...
    expect(maxAbsDiff(at0, forwardLlama2c(m, [4, 8, 15], [3, 4, 5]))).toBeLessThan(1e-9);
    // ...while changing the gaps changes every position that attends to an earlier one
    const gaps = forwardLlama2c(m, [4, 8, 15], [0, 2, 5]);
    expect(maxAbsDiff(at0.slice(0, 1), gaps.slice(0, 1))).toBeLessThan(1e-12);
    expect(maxAbsDiff(at0.slice(1, 2), gaps.slice(1, 2))).toBeGreaterThan(1e-6);
    expect(maxAbsDiff(at0.slice(2), gaps.slice(2))).toBeGreaterThan(1e-6);
    const { cfg, w } = llama2cToHf(m);
    expect(maxAbsDiff(gaps, forwardHfLlama(cfg, w, [4, 8, 15], [0, 2, 5]))).toBeLessThan(1e-9);
    const full = forwardLlama2c(m, tokens);
    const prefix = forwardLlama2c(m, tokens.slice(0, 4));
    expect(maxAbsDiff(prefix, full.slice(0, 4))).toBeLessThan(1e-12);
  });
});

describe("llama2c tokenizer reference", () => {
  const tokUrl = new URL("../../../shared/models/stories260K/tok512.bin", import.meta.url);
  const ckptUrl = new URL("../../../shared/models/stories260K/stories260K.bin", import.meta.url);
  const have = existsSync(fileURLToPath(tokUrl)) && existsSync(fileURLToPath(ckptUrl));
  const itIf = have ? it : it.skip;
  const suffix = have ? "" : " (skipped: ../shared/models/stories260K absent)";

  itIf(`encode/decode round-trips on tok512${suffix}`, () => {
    const tok = loadLlama2cTokenizer(new Uint8Array(readFileSync(tokUrl)), 512);
    expect(tok.vocab).toHaveLength(512);
    const ids = encodeLlama2c(tok, "Once upon a time", true, false);
    expect(ids[0]).toBe(1);
    expect(ids.length).toBeLessThan(10);
    expect(encodeLlama2c(tok, "", true, true)).toEqual([1, 2]);
    expect(encodeLlama2c(tok, "", false, false)).toEqual([]);
    for (const s of ["Once upon a time", "Hello, world!", "  two spaces\nnew line", "naïve café – ok", "emoji 🦙🎉 end", "x"]) {
      const e = encodeLlama2c(tok, s, true, false);
      expect(decodeSequenceLlama2c(tok, e)).toBe(s);
      expect(encodeLlama2c(tok, s, true, true).at(-1)).toBe(2);
    }
    // bytes missing from the vocab fall back to <0xHH> ids (byte + 3)
    const emoji = encodeLlama2c(tok, "🦙", false, false);
    expect(emoji.slice(-4)).toEqual([0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
    expect(() => loadLlama2cTokenizer(new Uint8Array(readFileSync(tokUrl)).subarray(0, 100), 512)).toThrow(/truncated/);
  });

  itIf(`stories260K greedy decoding starts like karpathy's doc/stories260K.md${suffix}`, () => {
    const tok = loadLlama2cTokenizer(new Uint8Array(readFileSync(tokUrl)), 512);
    const m = readLlama2cCheckpoint(new Uint8Array(readFileSync(ckptUrl)));
    expect(m.config).toEqual({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      sharedClassifier: true,
    });
    const ids = [1];
    for (let step = 0; step < 12; step++) ids.push(argmax(forwardLlama2c(m, ids).at(-1)!));
    expect(decodeSequenceLlama2c(tok, ids)).toMatch(/^Once upon a time, there was a little/);
    const { cfg, w } = llama2cToHf(m);
    expect(maxAbsDiff(forwardHfLlama(cfg, w, ids), forwardLlama2c(m, ids))).toBeLessThan(1e-9);
  });
});

describe("masking reference", () => {
  it("pyRound rounds half to even", () => {
    expect(pyRound(0.5)).toBe(0);
    expect(pyRound(1.5)).toBe(2);
    expect(pyRound(2.5)).toBe(2);
    expect(pyRound(-0.5)).toBe(-0);
    expect(pyRound(-1.5)).toBe(-2);
    expect(pyRound(2.4999)).toBe(2);
    expect(pyRound(2.6)).toBe(3);
    expect(pyRound(3)).toBe(3);
  });

  it("cumulativeCounts follows repeated round(interval * remaining)", () => {
    // 0.25*10 = 2.5 -> 2; 0.25*8 = 2 -> 4; 0.25*6 = 1.5 -> 2 -> 6
    expect(cumulativeCounts(10, 0.25, 4)).toEqual([0, 2, 4, 6]);
    expect(cumulativeCounts(10, 0.25, 1)).toEqual([0]);
    // 0.5*7 = 3.5 -> 4; 0.5*3 = 1.5 -> 2 -> 6
    expect(cumulativeCounts(7, 0.5, 3)).toEqual([0, 4, 6]);
  });

  it("masks smallest magnitudes per layer and globally (hand-computed)", () => {
    const a = new Float32Array([0.5, -0.1, 0.3, 0.1]);
    const b = new Float32Array([-0.2, 0.05, 0.4, 0.6]);
    // layer, interval 0.5: n=4 -> counts [0, 2, 3]
    const layer = referenceMaskedLevels([a, b], "layer", 0.5, 3);
    expect(layer).toHaveLength(3);
    expect(Array.from(layer[0]![0]!)).toEqual(Array.from(a));
    // a: |-0.1| and |0.1| tie -> index 1 before 3; both zeroed at level 1
    expect(Array.from(layer[1]![0]!)).toEqual(Array.from(new Float32Array([0.5, 0, 0.3, 0])));
    expect(Array.from(layer[1]![1]!)).toEqual(Array.from(new Float32Array([0, 0, 0.4, 0.6])));
    expect(Array.from(layer[2]![0]!)).toEqual(Array.from(new Float32Array([0.5, 0, 0, 0])));
    expect(Array.from(layer[2]![1]!)).toEqual(Array.from(new Float32Array([0, 0, 0, 0.6])));
    // global, interval 0.25: n=8 -> counts [0, 2, 4]; order: b1(.05), a1(.1), a3(.1), b0(.2), ...
    const glob = referenceMaskedLevels([a, b], "global", 0.25, 3);
    expect(Array.from(glob[1]![0]!)).toEqual(Array.from(new Float32Array([0.5, 0, 0.3, 0.1])));
    expect(Array.from(glob[1]![1]!)).toEqual(Array.from(new Float32Array([-0.2, 0, 0.4, 0.6])));
    expect(Array.from(glob[2]![0]!)).toEqual(Array.from(new Float32Array([0.5, 0, 0.3, 0])));
    expect(Array.from(glob[2]![1]!)).toEqual(Array.from(new Float32Array([0, 0, 0.4, 0.6])));
    expect(countZeros(glob[2]![0]!) + countZeros(glob[2]![1]!)).toBe(4);
    // inputs untouched
    expect(countZeros(a) + countZeros(b)).toBe(0);
  });
});

describe("safetensors reference writer's rounding", () => {
  it("rounds fp32 to fp16 and bf16 to nearest, ties to even", () => {
    const f16 = [
      [1, 0x3c00],
      [65504, 0x7bff],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [2 ** -24, 1],
      [2 ** -25, 0],
      [3 * 2 ** -25, 2],
      [2 ** -14 - 2 ** -25, 0x0400],
      [65520, 0x7c00],
      [-2, 0xc000],
    ];
    expect([...f16Bits(Float32Array.from(f16, (c) => c[0]!))]).toEqual(f16.map((c) => c[1]));
    const bf16 = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80],
      [1 + 3 * 2 ** -8, 0x3f82],
      [-0.5, 0xbf00],
    ];
    expect([...bf16Bits(Float32Array.from(bf16, (c) => c[0]!))]).toEqual(bf16.map((c) => c[1]));
  });
});
