// Selection strategies over the scored rows of one group. Every strategy orders rows once and keeps a
// prefix per ratio, so with one seeded permutation per interval the subsets of smaller ratios are contained
// in those of larger ones (nested), with the same distribution as independent draws.
import type { SelectConfig } from "../config/schema.js";
import { easyIntervalSize } from "../contract/cuts.js";
import { pyRound } from "../util/math.js";
import { createRng, permutation, seedFor } from "../util/rng.js";

export type Strategy = SelectConfig["strategy"];

/** A scored row and the score its selection ranks by (DLC, loss0 or IFD). */
export interface Scored {
  row: number;
  score: number;
}

/** FlexRand's shares of the rows for keep ratio b and split s: from the easy interval and from the hard one. */
export function flexrandShares(b: number, s: number): { easy: number; hard: number } {
  if (s <= 0.5) {
    const easy = Math.min(s, b / 2);
    return { easy, hard: b - easy };
  }
  const hard = Math.min(1 - s, b / 2);
  return { easy: b - hard, hard };
}

/** FlexRand's draw sizes for N rows, keep ratio b and split s (README "What it computes"). */
export function flexrandCounts(n: number, b: number, s: number): { easySize: number; easy: number; hard: number } {
  const easySize = easyIntervalSize(n, s);
  const shares = flexrandShares(b, s);
  // Rounding each share separately can ask one row more than an interval holds.
  return { easySize, easy: Math.min(pyRound(n * shares.easy), easySize), hard: Math.min(pyRound(n * shares.hard), n - easySize) };
}

/** Ascending score, ties by row index: the order FlexRand's intervals and the top-K cuts are taken from. */
export function byScore(rows: Scored[]): Scored[] {
  return [...rows].sort((a, b) => a.score - b.score || a.row - b.row);
}

export interface GroupDraw {
  /** Kept rows per ratio (same order as `ratios`). */
  kept: number[][];
  /** FlexRand: rows drawn from the easy and the hard interval per ratio. */
  easy: number[];
  hard: number[];
  /** FlexRand: the score halfway between the group's easy and hard interval (null when one is empty). */
  splitScore: number | null;
}

function shuffled(rows: number[], seed: number, salt: string): number[] {
  const perm = permutation(createRng(seedFor(seed, salt)), rows.length);
  return Array.from(perm, (i) => rows[i]!);
}

/** What one group keeps at one ratio: `rows` rows (flexrand: `easy` + `hard` from its two intervals), or all of them. */
export interface Quota {
  rows: number;
  easy: number;
  hard: number;
  all: boolean;
}

/** What a strategy reads to draw one ratio's quota of one group. */
interface DrawInput {
  /** The group's rows by ascending score (ties by row), and by row. */
  byScore: number[];
  byRow: number[];
  quota: Quota;
  split: number;
  /** A seeded permutation of `items` for the named stream. */
  stream: (name: string, items: number[]) => number[];
}

type Draw = (d: DrawInput) => { kept: number[]; easy: number; hard: number };

/** The strategies, by the name select.strategy gives. */
const STRATEGIES: Record<Strategy, Draw> = {
  easy: ({ byScore, quota }) => ({ kept: byScore.slice(0, quota.rows), easy: 0, hard: 0 }),
  hard: ({ byScore, quota }) => ({ kept: byScore.slice(byScore.length - quota.rows), easy: 0, hard: 0 }),
  random: ({ byRow, quota, stream }) => ({ kept: stream("all", byRow).slice(0, quota.rows), easy: 0, hard: 0 }),
  flexrand: ({ byScore, quota, split, stream }) => {
    const easySize = easyIntervalSize(byScore.length, split);
    // Each interval in row order before its permutation: the draw depends only on which rows are in it, not
    // on their order by score (estimated scores, score.refine, give the same kept rows when the intervals agree).
    const inRowOrder = (rows: number[]) => [...rows].sort((x, y) => x - y);
    const easy = stream("easy", inRowOrder(byScore.slice(0, easySize))).slice(0, quota.easy);
    const hard = stream("hard", inRowOrder(byScore.slice(easySize))).slice(0, quota.hard);
    return { kept: [...easy, ...hard], easy: easy.length, hard: hard.length };
  },
};

/**
 * Draws every ratio's quota for one group of scored rows. With `nested`, each stream is one permutation whose
 * prefixes serve all ratios; otherwise each ratio gets its own permutations.
 */
export function drawGroup(
  rows: Scored[],
  quotas: Quota[],
  opts: { strategy: Strategy; split: number; seed: number; nested: boolean; group: string },
): GroupDraw {
  const sorted = byScore(rows);
  const input = { byScore: sorted.map((r) => r.row), byRow: rows.map((r) => r.row).sort((x, y) => x - y), split: opts.split };
  const easySize = easyIntervalSize(rows.length, opts.split);
  const splitScore =
    opts.strategy === "flexrand" && easySize > 0 && easySize < rows.length
      ? (sorted[easySize - 1]!.score + sorted[easySize]!.score) / 2
      : null;
  const out: GroupDraw = { kept: [], easy: [], hard: [], splitScore };
  quotas.forEach((quota, i) => {
    // Keep ratio 1 is the full data, whatever rounding the strategy's shares would do.
    const draw = quota.all
      ? { kept: [...input.byScore], easy: 0, hard: 0 }
      : STRATEGIES[opts.strategy]({
          ...input,
          quota,
          stream: (name, items) => shuffled(items, opts.seed, `${opts.group}\u0000${name}${opts.nested ? "" : `\u0000${i}`}`),
        });
    out.kept.push(draw.kept);
    out.easy.push(draw.easy);
    out.hard.push(draw.hard);
  });
  return out;
}
