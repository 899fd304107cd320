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

/** FlexRand's draw sizes for N rows, keep ratio b and split s (DEVELOPERS.md). */
export function flexrandCounts(n: number, b: number, s: number): { easySize: number; easy: number; hard: number } {
  const easySize = pyRound(n * s);
  let e: number;
  let h: number;
  if (s <= 0.5) {
    e = Math.min(s, b / 2);
    h = b - e;
  } else {
    h = Math.min(1 - s, b / 2);
    e = b - h;
  }
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

/**
 * Draws every ratio for one group of scored rows. With `nested`, each stream is one permutation whose
 * prefixes serve all ratios; otherwise each ratio gets its own permutations.
 */
export function drawGroup(rows: Scored[], ratios: number[], opts: { strategy: Strategy; split: number; seed: number; nested: boolean; group: string }): GroupDraw {
  const n = rows.length;
  const sorted = byDlc(rows).map((r) => r.row);
  const out: GroupDraw = { kept: [], easy: [], hard: [] };
  const stream = (name: string, items: number[], ratioIndex: number) =>
    shuffled(items, opts.seed, `${opts.group}\u0000${name}${opts.nested ? "" : `\u0000${ratioIndex}`}`);
  ratios.forEach((b, i) => {
    if (b === 1) {
      // Keep ratio 1 is the full data, whatever rounding the strategy's shares would do.
      out.kept.push([...sorted]);
      out.easy.push(0);
      out.hard.push(0);
      return;
    }
    const k = pyRound(n * b);
    switch (opts.strategy) {
      case "easy":
        out.kept.push(sorted.slice(0, k));
        break;
      case "hard":
        out.kept.push(sorted.slice(n - k));
        break;
      case "random":
        out.kept.push(stream("all", rows.map((r) => r.row).sort((x, y) => x - y), i).slice(0, k));
        break;
      case "flexrand": {
        const c = flexrandCounts(n, b, opts.split);
        const easy = stream("easy", sorted.slice(0, c.easySize), i).slice(0, c.easy);
        const hard = stream("hard", sorted.slice(c.easySize), i).slice(0, c.hard);
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
