// FlexRand and the baselines against the formula (README "What it computes"), written out here independently.
import { describe, expect, it } from "vitest";
import { groupQuotas } from "../../src/select/select.js";
import { drawGroup, flexrandCounts, type Strategy } from "../../src/select/strategies.js";
import { pyRound } from "../reference/masking.js";
import { lcg } from "../helpers/fixtures.js";

/** The formula, literally: interval sizes and draw sizes. */
function formula(n: number, b: number, s: number) {
  const easySize = pyRound(n * s);
  const [e, h] = s <= 0.5 ? [Math.min(s, b / 2), b - Math.min(s, b / 2)] : [b - Math.min(1 - s, b / 2), Math.min(1 - s, b / 2)];
  return { easySize, easy: pyRound(n * e), hard: pyRound(n * h) };
}

function rowsOf(dlcs: number[]) {
  return dlcs.map((dlc, i) => ({ row: i * 3 + 1, score: dlc })); // row ids unlike positions, to catch mix-ups
}

/** One group's draw: its quotas are the unstratified counts. */
const draw = (rows: ReturnType<typeof rowsOf>, ratios: number[], strategy: Strategy, split = 0.5, seed = 0, nested = true) =>
  drawGroup(
    rows,
    ratios.map((b) => groupQuotas([rows.length], b, { strategy, split }, [0])[0]!),
    { strategy, split, seed, nested, group: "" },
  );

describe("FlexRand", () => {
  const splits = [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99];
  const ratios = [0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9];

  it("draws round(N·e) from the easy and round(N·h) from the hard interval (N = 1..10 and larger)", () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 37, 100, 1001])
      for (const s of splits)
        for (const b of ratios) {
          const f = formula(n, b, s);
          const c = flexrandCounts(n, b, s);
          expect(c.easySize).toBe(f.easySize);
          // The formula's counts, except where rounding asks more than an interval holds.
          expect(c.easy).toBe(Math.min(f.easy, f.easySize));
          expect(c.hard).toBe(Math.min(f.hard, n - f.easySize));
          if (f.easy <= f.easySize && f.hard <= n - f.easySize) expect([c.easy, c.hard]).toEqual([f.easy, f.hard]);

          const r = rowsOf(Array.from({ length: n }, (_, i) => Math.sin(i * 7.3)));
          const d = draw(r, [b], "flexrand", s, n);
          const sorted = [...r].sort((x, y) => x.score - y.score || x.row - y.row).map((x) => x.row);
          const easySet = new Set(sorted.slice(0, f.easySize));
          const kept = d.kept[0]!;
          expect(new Set(kept).size).toBe(kept.length); // without replacement
          expect(kept.filter((x) => easySet.has(x)).length).toBe(c.easy);
          expect(kept.filter((x) => !easySet.has(x)).length).toBe(c.hard);
          expect([d.easy[0], d.hard[0]]).toEqual([c.easy, c.hard]);
        }
  });

  it("split s <= 0.5 caps the easy share at s, above 0.5 caps the hard share at 1 - s", () => {
    expect(formula(100, 0.5, 0.1)).toEqual({ easySize: 10, easy: 10, hard: 40 });
    expect(flexrandCounts(100, 0.5, 0.1)).toEqual({ easySize: 10, easy: 10, hard: 40 });
    expect(flexrandCounts(100, 0.5, 0.9)).toEqual({ easySize: 90, easy: 40, hard: 10 });
    expect(flexrandCounts(100, 0.3, 0.5)).toEqual({ easySize: 50, easy: 15, hard: 15 });
    expect(flexrandCounts(10, 0.5, 0.25)).toEqual({ easySize: 2, easy: 2, hard: 2 }); // 2.5 -> 2 and 2.5 -> 2 (half to even)
    expect(flexrandCounts(3, 0.999, 0.5)).toEqual({ easySize: 2, easy: 1, hard: 1 });
  });

  it("ratio 1 keeps every scored row, whatever the split and the rounding", () => {
    for (const n of [1, 2, 3, 5, 10])
      for (const s of [0.01, 0.5, 0.99])
        expect(
          draw(
            rowsOf(
              Array(n)
                .fill(0)
                .map((_, i) => i),
            ),
            [1],
            "flexrand",
            s,
          ).kept[0]!.sort((a, b) => a - b),
        ).toEqual(rowsOf(Array(n).fill(0)).map((r) => r.row));
  });

  it("all-equal scores: intervals by row index", () => {
    const r = rowsOf(Array(10).fill(2.5));
    const d = draw(r, [0.4], "flexrand", 0.5, 3);
    const firstHalf = new Set(r.slice(0, 5).map((x) => x.row));
    expect(d.kept[0]!.filter((x) => firstHalf.has(x)).length).toBe(2);
    expect(d.kept[0]!.length).toBe(4);
  });

  it("draws uniformly within each interval", () => {
    const n = 20;
    const r = rowsOf(Array.from({ length: n }, (_, i) => i));
    const hits = new Map<number, number>();
    const trials = 4000;
    for (let seed = 0; seed < trials; seed++)
      for (const x of draw(r, [0.3], "flexrand", 0.5, seed).kept[0]!) hits.set(x, (hits.get(x) ?? 0) + 1);
    // 3 of 10 from each interval: each row is kept with probability 0.3.
    for (const x of r) expect(Math.abs(hits.get(x.row)! / trials - 0.3)).toBeLessThan(0.035);
  });

  it("nested: smaller ratios keep subsets of larger ones; independent draws need not", () => {
    const rand = lcg(5);
    const r = rowsOf(Array.from({ length: 200 }, rand));
    const rs = [0.1, 0.2, 0.3, 0.5, 0.8];
    for (const strategy of ["flexrand", "random", "easy", "hard"] as const) {
      const d = draw(r, rs, strategy, 0.3, 11);
      for (let i = 1; i < rs.length; i++) {
        const bigger = new Set(d.kept[i]);
        expect(
          d.kept[i - 1]!.every((x) => bigger.has(x)),
          `${strategy} ${rs[i - 1]} in ${rs[i]}`,
        ).toBe(true);
      }
    }
    const independent = draw(r, rs, "flexrand", 0.3, 11, false);
    const nestedEverywhere = rs.slice(1).every((_, i) => independent.kept[i]!.every((x) => new Set(independent.kept[i + 1]).has(x)));
    expect(nestedEverywhere).toBe(false);
  });

  it("the draw depends only on which rows each interval holds, not on their order by score (since 0.3.0)", () => {
    const rand = lcg(11);
    const scores = Array.from({ length: 200 }, () => rand());
    // Other scores, the same intervals: each interval's scores shuffled among its rows.
    const easy = new Set([...scores.keys()].sort((a, b) => scores[a]! - scores[b]! || a - b).slice(0, 100));
    const reordered = [...scores];
    for (const inEasy of [true, false]) {
      const idx = [...scores.keys()].filter((i) => easy.has(i) === inEasy);
      const values = idx.map((i) => scores[i]!).reverse();
      idx.forEach((i, j) => (reordered[i] = values[j]!));
    }
    expect(reordered).not.toEqual(scores);
    for (const seed of [0, 1, 2]) {
      const a = draw(rowsOf(scores), [0.1, 0.3, 0.5], "flexrand", 0.5, seed);
      const b = draw(rowsOf(reordered), [0.1, 0.3, 0.5], "flexrand", 0.5, seed);
      expect(b.kept.map((k) => [...k].sort((x, y) => x - y))).toEqual(a.kept.map((k) => [...k].sort((x, y) => x - y)));
    }
  });

  it("same seed, same subset; another seed, another subset", () => {
    const r = rowsOf(Array.from({ length: 100 }, lcg(9)));
    expect(draw(r, [0.3], "flexrand", 0.5, 1).kept).toEqual(draw(r, [0.3], "flexrand", 0.5, 1).kept);
    expect(new Set(draw(r, [0.3], "flexrand", 0.5, 1).kept[0])).not.toEqual(new Set(draw(r, [0.3], "flexrand", 0.5, 2).kept[0]));
  });
});

describe("baselines", () => {
  const r = rowsOf([5, 1, 4, 1, 3, 9, 2, 6]);
  const sorted = [...r].sort((a, b) => a.score - b.score || a.row - b.row).map((x) => x.row);

  it("easy / hard keep the lowest / highest round(N·b) by DLC, ties by row", () => {
    expect(draw(r, [0.25], "easy").kept[0]).toEqual(sorted.slice(0, 2));
    expect(draw(r, [0.25], "hard").kept[0]).toEqual(sorted.slice(6));
    expect(draw(r, [0.5], "easy").kept[0]).toEqual(sorted.slice(0, 4));
  });

  it("random ignores the scores", () => {
    const a = draw(r, [0.5], "random", 0.5, 3).kept[0]!;
    const b = draw(rowsOf([0, 0, 0, 0, 0, 0, 0, 0]), [0.5], "random", 0.5, 3).kept[0]!;
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
  });

  it("a group smaller than 1/ratio rounds to nothing on its own (stratified selection shares out one total instead)", () => {
    const tiny = rowsOf([3, 1]);
    expect(draw(tiny, [0.1], "flexrand").kept[0]).toEqual([]); // round(0.2) = 0
    expect(draw(tiny, [0.1], "easy").kept[0]).toEqual([]);
    expect(draw(rowsOf([3]), [0.5], "random").kept[0]).toEqual([]); // round(0.5) = 0, half to even
    expect(draw(rowsOf([3]), [0.6], "random").kept[0]).toEqual([1]);
  });
});
