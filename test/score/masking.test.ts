// The radix-select masking against the sort-based reference (test/reference/masking.ts): exactly the same
// entries zeroed at every level, for both scopes, with ties, zeros, -0 and fp16 weights.
import { describe, expect, it } from "vitest";
import { MaskSchedule, cumulativeCounts, halfMagnitudeBits, maskedCounts, type MaskMatrix } from "../../src/score/masking.js";
import { pyRound } from "../../src/util/math.js";
import { decodeHalf } from "../reference/fp16.js";
import { countZeros, cumulativeCounts as refCounts, pyRound as refRound, referenceMaskedLevels } from "../reference/masking.js";
import { lcg } from "../helpers/fixtures.js";

/** Gaussian-ish weights; `quantize` makes many exact ties; some exact zeros and negative zeros. */
function matrices(sizes: number[], seed: number, quantize = 0): Float32Array[] {
  const r = lcg(seed);
  return sizes.map((n) =>
    Float32Array.from({ length: n }, () => {
      let v = (r() + r() + r() - 1.5) * 0.1;
      if (quantize) v = Math.round(v * quantize) / quantize;
      const u = r();
      return u < 0.01 ? 0 : u < 0.02 ? -0 : v;
    }),
  );
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
const zeroMask = (a: ArrayLike<number>) => Array.from(a, (v) => (v === 0 ? 1 : 0));

describe("masking counts", () => {
  it("pyRound rounds halves to even like Python", () => {
    for (const x of [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999, 2.5001, 7, 0.2 * 15, 0.2 * 12.5, 1e15 + 0.5])
      expect(pyRound(x) + 0).toBe(refRound(x) + 0); // + 0: Python's -0.0 and 0 are the same count
  });

  it("cumulative counts follow the recurrence", () => {
    for (const n of [0, 1, 2, 7, 10, 13, 100, 1001, 123457])
      for (const interval of [0.02, 0.1, 0.2, 0.25, 0.5, 0.9])
        for (const levels of [1, 3, 10, 50]) expect(cumulativeCounts(n, interval, levels)).toEqual(refCounts(n, interval, levels));
  });
});

describe("MaskSchedule (l1) equals the sort-based reference", () => {
  const cases = [
    { name: "continuous weights", sizes: [1000, 37, 4096, 1], quantize: 0 },
    { name: "heavy ties", sizes: [800, 64, 3000], quantize: 16 },
    { name: "extreme ties", sizes: [500, 500], quantize: 2 },
  ];
  for (const c of cases)
    for (const scope of ["layer", "global"] as const)
      for (const [interval, levels] of [
        [0.2, 4],
        [0.25, 6],
        [0.02, 12],
      ] as const)
        it(`${c.name}, ${scope}, interval ${interval}, ${levels} levels`, async () => {
          const original = matrices(c.sizes, c.sizes.length * 7 + levels, c.quantize);
          const expected = referenceMaskedLevels(original, scope, interval, levels);
          const working: MaskMatrix[] = original.map((a, i) => ({ name: `m${i}`, data: a.slice() }));
          const schedule = new MaskSchedule(working, { file: "test", scope, method: "l1", interval, levels, seed: 0 });
          for (let k = 0; k < levels; k++) {
            await schedule.applyLevel(k);
            working.forEach((m, i) => expect(bits(m.data as Float32Array), `level ${k}, matrix ${i}`).toEqual(bits(expected[k]![i]!)));
            // Zeros already in the weights come first in the order: a matrix holds max(c(k), its own zeros).
            if (scope === "layer")
              original.forEach((a, i) => {
                const masked = refCounts(a.length, interval, levels)[k]!;
                expect(countZeros(working[i]!.data as Float32Array)).toBe(Math.max(masked, countZeros(a)));
              });
            const total = original.reduce((s, a) => s + a.length, 0);
            expect(
              maskedCounts(
                original.map((a) => a.length),
                { scope, interval, levels },
              )[k],
            ).toBe(
              scope === "global"
                ? refCounts(total, interval, levels)[k]
                : original.reduce((s, a) => s + refCounts(a.length, interval, levels)[k]!, 0),
            );
          }
        });
});

describe("MaskSchedule counts on weights without zeros", () => {
  it("zeroes exactly c(k) per matrix (layer) and in total (global)", async () => {
    const original = matrices([999, 1234, 77], 5).map((a) => a.map((v) => (v === 0 ? 0.5 : v)));
    for (const scope of ["layer", "global"] as const) {
      const working: MaskMatrix[] = original.map((a, i) => ({ name: `m${i}`, data: a.slice() }));
      const schedule = new MaskSchedule(working, { file: "test", scope, method: "l1", interval: 0.2, levels: 5, seed: 0 });
      for (let k = 0; k < 5; k++) {
        await schedule.applyLevel(k);
        if (scope === "layer")
          working.forEach((m, i) => expect(countZeros(m.data as Float32Array)).toBe(refCounts(original[i]!.length, 0.2, 5)[k]));
        else expect(working.reduce((s, m) => s + countZeros(m.data as Float32Array), 0)).toBe(refCounts(999 + 1234 + 77, 0.2, 5)[k]);
      }
    }
  });
});

describe("fp16 weights", () => {
  it("halfMagnitudeBits equals the fp16 value's fp32 bits for every finite pattern", () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let h = 0; h < 0x7c00; h++) {
      f[0] = decodeHalf(h);
      expect(halfMagnitudeBits(h)).toBe(u[0]);
    }
  });

  it("masks fp16 bit patterns like the reference masks their values", async () => {
    const r = lcg(9);
    const halves = [300, 1700].map((n) => Uint16Array.from({ length: n }, () => Math.floor(r() * 0x7800) | (r() < 0.5 ? 0x8000 : 0)));
    const asFloat = halves.map((h) => Float32Array.from(h, decodeHalf));
    for (const scope of ["layer", "global"] as const) {
      const expected = referenceMaskedLevels(asFloat, scope, 0.3, 4);
      const working: MaskMatrix[] = halves.map((h, i) => ({ name: `h${i}`, data: h.slice() }));
      const schedule = new MaskSchedule(working, { file: "test", scope, method: "l1", interval: 0.3, levels: 4, seed: 0 });
      for (let k = 0; k < 4; k++) {
        await schedule.applyLevel(k);
        working.forEach((m, i) => {
          const data = m.data as Uint16Array;
          // Zeroed entries are +0; the others keep their bits.
          expect(zeroMask(Array.from(data, (x) => x & 0x7fff))).toEqual(zeroMask(expected[k]![i]!));
          data.forEach((x, j) => {
            if (x !== 0) expect(x).toBe(halves[i]![j]);
          });
        });
      }
    }
  });
});

describe("random method", () => {
  // No exact zeros in these weights, so every zero is a masked entry.
  const original = matrices([2000, 3000], 1).map((a) => a.map((v) => (v === 0 ? 0.5 : v)));
  const run = async (seed: number, scope: "layer" | "global") => {
    const working: MaskMatrix[] = original.map((a, i) => ({ name: `m${i}`, data: a.slice() }));
    const schedule = new MaskSchedule(working, { file: "test", scope, method: "random", interval: 0.3, levels: 4, seed });
    const levels: number[][][] = [];
    for (let k = 0; k < 4; k++) {
      await schedule.applyLevel(k);
      levels.push(working.map((m) => zeroMask(m.data)));
    }
    return levels;
  };
  const sum = (z: number[]) => z.reduce((s, v) => s + v, 0);

  it("masks exactly the recurrence's counts, nested across levels", async () => {
    for (const scope of ["layer", "global"] as const) {
      const levels = await run(3, scope);
      for (let k = 0; k < 4; k++) {
        if (scope === "layer") levels[k]!.forEach((z, i) => expect(sum(z)).toBe(refCounts(original[i]!.length, 0.3, 4)[k]));
        else expect(sum(levels[k]!.flat())).toBe(refCounts(5000, 0.3, 4)[k]);
        if (k > 0) levels[k - 1]!.forEach((z, i) => z.forEach((v, j) => v && expect(levels[k]![i]![j]).toBe(1)));
      }
    }
  });

  it("is reproducible for a seed, differs between seeds, and ignores magnitude", async () => {
    const a = await run(3, "layer");
    expect(await run(3, "layer")).toEqual(a);
    expect((await run(4, "layer"))[1]).not.toEqual(a[1]);
    // Under l1 every masked entry is smaller than every kept one; a random mask mixes magnitudes.
    const m = Array.from(original[1]!, Math.abs);
    const masked = a[1]![1]!;
    expect(Math.max(...m.filter((_, j) => masked[j]))).toBeGreaterThan(Math.min(...m.filter((_, j) => !masked[j])));
  });
});
