// The select stage: which rows each keep ratio keeps, from the scores (and the stratification field).
import type { SelectConfig } from "../config/schema.js";
import type { ScoresFile } from "../score/scores-file.js";
import { drawGroup, type Scored } from "./strategies.js";

export interface RatioSelection {
  ratio: number;
  /** 1 where the row is kept, per input row. */
  keep: Uint8Array;
  /** Scored rows kept, and (flexrand) how many came from the easy and the hard interval. */
  kept: number;
  easy: number;
  hard: number;
}

export interface Selection {
  ratios: RatioSelection[];
  scored: number;
  /** Rows without a DLC score, in row order. */
  unscored: number[];
}

const NULL_GROUP = "\u0000null";

/**
 * Applies the strategy to all scored rows, or within each stratification group (rounding per group).
 * Rows without a score are kept in every output or in none (`unscored`).
 */
export function selectRows(scores: ScoresFile, cfg: SelectConfig, stratify: (string | null)[] | null): Selection {
  const { cols } = scores;
  const n = cols.dlc.length;
  const groups = new Map<string, Scored[]>();
  const unscored: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = cols.row[i]!;
    if (Number.isNaN(cols.dlc[i]!)) {
      unscored.push(row);
      continue;
    }
    const key = stratify ? (stratify[row] ?? NULL_GROUP) : "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push({ row, dlc: cols.dlc[i]! });
  }
  // A scores file covers rows 0..n-1 (shards are merged first).
  const ratios: RatioSelection[] = cfg.ratios.map((ratio) => ({ ratio, keep: new Uint8Array(n), kept: 0, easy: 0, hard: 0 }));
  // Groups in sorted order: the draws do not depend on the order rows come in.
  for (const key of [...groups.keys()].sort()) {
    const draw = drawGroup(groups.get(key)!, cfg.ratios, { strategy: cfg.strategy, split: cfg.split, seed: cfg.seed, nested: cfg.nested, group: key });
    draw.kept.forEach((kept, i) => {
      const r = ratios[i]!;
      for (const row of kept) r.keep[row] = 1;
      r.kept += kept.length;
      r.easy += draw.easy[i]!;
      r.hard += draw.hard[i]!;
    });
  }
  if (cfg.unscored === "keep") for (const r of ratios) for (const row of unscored) r.keep[row] = 1;
  return { ratios, scored: n - unscored.length, unscored };
}
