// Selection strategies over the scored rows of one group. Every strategy orders rows once and keeps a
// prefix per ratio, so with one seeded permutation per interval the subsets of smaller ratios are contained
// in those of larger ones (nested), with the same distribution as independent draws.
import { pyRound } from "../score/masking.js";
import { createRng, permutation } from "../util/rng.js";

export type Strategy = "flexrand" | "random" | "easy" | "hard";

export interface Scored {
  row: number;
  dlc: number;
}

/** FlexRand's shares of the rows for keep ratio b and split s: e from the easy interval, h from the hard one. */
export function flexrandShares(b: number, s: number): { e: number; h: number } {
  if (s <= 0.5) {
    const e = Math.min(s, b / 2);
    return { e, h: b - e };
  }
  const h = Math.min(1 - s, b / 2);
  return { e: b - h, h };
}

/** FlexRand's draw sizes for N rows, keep ratio b and split s (README "What it computes"). */
export function flexrandCounts(n: number, b: number, s: number): { easySize: number; easy: number; hard: number } {
  const easySize = pyRound(n * s);
  const { e, h } = flexrandShares(b, s);
  // Rounding each share separately can ask one row more than an interval holds.
  return { easySize, easy: Math.min(pyRound(n * e), easySize), hard: Math.min(pyRound(n * h), n - easySize) };
}

/** Ascending DLC, ties by row index: the order FlexRand's intervals and the top-K cuts are taken from. */
export function byDlc(rows: Scored[]): Scored[] {
  return [...rows].sort((a, b) => a.dlc - b.dlc || a.row - b.row);
}

export interface GroupDraw {
  /** Kept rows per ratio (same order as `ratios`). */
  kept: number[][];
  /** FlexRand: rows drawn from the easy and the hard interval per ratio. */
  easy: number[];
  hard: number[];
}

function shuffled(rows: number[], seed: number, salt: string): number[] {
  const perm = permutation(createRng(seedFor(seed, salt)), rows.length);
  return Array.from(perm, (i) => rows[i]!);
}

/** A 32-bit seed for a named stream (group, interval, ratio) of the user's seed. */
export function seedFor(seed: number, salt: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < salt.length; i++) h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** What one group keeps at one ratio: `k` rows (flexrand: `easy` + `hard` from its two intervals), or all of them. */
export interface Quota {
  k: number;
  easy: number;
  hard: number;
  all: boolean;
}

/**
 * Draws every ratio's quota for one group of scored rows. With `nested`, each stream is one permutation whose
 * prefixes serve all ratios; otherwise each ratio gets its own permutations.
 */
export function drawGroup(rows: Scored[], quotas: Quota[], opts: { strategy: Strategy; split: number; seed: number; nested: boolean; group: string }): GroupDraw {
  const n = rows.length;
  const sorted = byDlc(rows).map((r) => r.row);
  const out: GroupDraw = { kept: [], easy: [], hard: [] };
  const stream = (name: string, items: number[], ratioIndex: number) =>
    shuffled(items, opts.seed, `${opts.group}\u0000${name}${opts.nested ? "" : `\u0000${ratioIndex}`}`);
  quotas.forEach((q, i) => {
    if (q.all) {
      // Keep ratio 1 is the full data, whatever rounding the strategy's shares would do.
      out.kept.push([...sorted]);
      out.easy.push(0);
      out.hard.push(0);
      return;
    }
    switch (opts.strategy) {
      case "easy":
        out.kept.push(sorted.slice(0, q.k));
        break;
      case "hard":
        out.kept.push(sorted.slice(n - q.k));
        break;
      case "random":
        out.kept.push(stream("all", rows.map((r) => r.row).sort((x, y) => x - y), i).slice(0, q.k));
        break;
      case "flexrand": {
        const easySize = pyRound(n * opts.split);
        const easy = stream("easy", sorted.slice(0, easySize), i).slice(0, q.easy);
        const hard = stream("hard", sorted.slice(easySize), i).slice(0, q.hard);
        out.kept.push([...easy, ...hard]);
        out.easy.push(easy.length);
        out.hard.push(hard.length);
        return;
      }
    }
    out.easy.push(0);
    out.hard.push(0);
  });
  return out;
}
