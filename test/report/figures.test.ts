// The report's figures against values worked out by hand.
import { describe, expect, it } from "vitest";
import { cdfAt, clippedAxis, evenSample, extremes, jaccard, oneLine, ranks, spearman } from "../../src/report/figures.js";

describe("report figures", () => {
  it("ranks share ties (average rank), as Spearman's ρ needs", () => {
    expect(Array.from(ranks([10, 20, 20, 5]))).toEqual([2, 3.5, 3.5, 1]);
  });

  it("Spearman's ρ: monotone = 1, reversed = -1, a hand-worked case, NaN rows skipped, constant = null", () => {
    expect(spearman([1, 2, 3, 4], [10, 100, 1000, 10000]).rho).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1]).rho).toBeCloseTo(-1, 12);
    // Ranks (1,2,3,4,5) vs (2,1,4,3,5): 1 - 6·Σd² / (n(n²-1)) = 1 - 6·4/120 = 0.8.
    expect(spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]).rho).toBeCloseTo(0.8, 12);
    expect(spearman([1, NaN, 2, 3], [1, 5, 2, NaN])).toEqual({ rho: 1, rows: 2 });
    expect(spearman([1, 2, 3], [7, 7, 7]).rho).toBeNull();
  });

  it("Jaccard of two keep masks", () => {
    expect(jaccard(Uint8Array.from([1, 1, 0, 0, 1]), Uint8Array.from([0, 1, 1, 0, 1]))).toEqual({
      jaccard: 0.5,
      intersection: 2,
      union: 4,
      only_a: 1,
      only_b: 1,
    });
    expect(jaccard(new Uint8Array(3), new Uint8Array(3)).jaccard).toBe(1);
  });

  it("a clipped axis spans the 1st to 99th percentile and counts what it leaves out; CDFs are shares ≤ x", () => {
    const values = [...Array.from({ length: 198 }, (_, i) => i / 10), -50, 500];
    const axis = clippedAxis(values);
    // Sorted: -50, 0, 0.1, ..., 19.7, 500; 1st percentile at index floor(0.01·199) = 1, 99th at floor(0.99·199) = 197.
    expect([axis.lo, axis.hi, axis.below, axis.above]).toEqual([0, 19.6, 1, 2]);
    expect(axis.x[0]).toBe(0);
    expect(axis.x.at(-1)).toBe(19.6);
    expect(cdfAt([1, 2, 2, 3], [0, 1, 2, 2.5, 3])).toEqual([0, 0.25, 0.75, 0.75, 1]);
  });

  it("samples, extremes and one-line text", () => {
    expect(evenSample([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4)).toEqual([0, 2, 5, 7]);
    expect(extremes([0, 1, 2, 3, 4], [5, 1, 4, 1, 9], 2)).toEqual({ lowest: [1, 3], highest: [4, 0] });
    expect(oneLine("a\n  b\tc", 10)).toBe("a b c");
    expect(oneLine("abcdefghijkl", 5)).toBe("abcd…");
  });
});
