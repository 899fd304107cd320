// Row flags of the scores file that a curator acts on (select.exclude drops them): exact duplicates (found
// while rendering, src/text/duplicates) and outliers, by a robust rule over the scored rows' own scores.
import { median } from "../util/math.js";
import type { ScoreColumns, ScoresFile } from "./file.js";
import { scoredRows } from "./status.js";

/** MAD x 1.4826 estimates the standard deviation of normal data (Iglewicz and Hoaglin's modified z-score). */
const MAD_TO_SD = 1.4826;

/** The rule's bounds for one score: rows outside [low, high] are outliers (none when MAD is 0). */
export function outlierBounds(values: number[], k: number): { low: number; high: number } | null {
  if (!values.length) return null;
  const m = median(values);
  const spread = MAD_TO_SD * median(values.map((v) => Math.abs(v - m)));
  return spread > 0 ? { low: m - k * spread, high: m + k * spread } : null;
}

/**
 * 1 where a scored row's DLC or loss0 lies more than k robust standard deviations (1.4826 x MAD) from the
 * median of the scored rows' values, on either side; 0 for every other row.
 */
export function outlierFlags(cols: Pick<ScoreColumns, "dlc" | "loss0">, k: number): Uint8Array {
  const rows = scoredRows(cols.dlc);
  const flags = new Uint8Array(cols.dlc.length);
  for (const values of [cols.dlc, cols.loss0]) {
    const bounds = outlierBounds(
      rows.map((r) => values[r]!),
      k,
    );
    if (bounds) for (const r of rows) if (values[r]! < bounds.low || values[r]! > bounds.high) flags[r] = 1;
  }
  return flags;
}

/** The scores with their outlier flags (a complete file's; a shard has none) for k, and k in the metadata. */
export function withOutlierK(scores: ScoresFile, k: number): ScoresFile {
  if (scores.meta.outlier_k === k) return scores;
  const { cols } = scores;
  return { ...scores, meta: { ...scores.meta, outlier_k: k }, cols: cols.outlier ? { ...cols, outlier: outlierFlags(cols, k) } : cols };
}

/** The flags' counts for the summaries: duplicates (and of them those with the same prompt too), outliers. */
export interface FlagCounts {
  duplicates: number;
  duplicate_pairs: number;
  outliers: number;
}

export function flagCounts(cols: Pick<ScoreColumns, "duplicateOf" | "duplicatePairOf" | "outlier">): FlagCounts {
  const set = (rows: Float64Array) => rows.filter((r) => !Number.isNaN(r)).length;
  return {
    duplicates: set(cols.duplicateOf),
    duplicate_pairs: set(cols.duplicatePairOf),
    outliers: cols.outlier ? cols.outlier.reduce((s, v) => s + v, 0) : 0,
  };
}

/** "3 duplicate responses (1 with the same prompt too), 2 outliers (...)"; k null: a shard's, without outliers. */
export function describeFlags(c: FlagCounts, k: number | null): string {
  const duplicates = `${c.duplicates} duplicate response${c.duplicates === 1 ? "" : "s"} (${c.duplicate_pairs} with the same prompt too)`;
  if (k === null) return `${duplicates}; the merge flags outliers`;
  return `${duplicates}, ${c.outliers} outlier${c.outliers === 1 ? "" : "s"} (DLC or loss0 beyond median ± ${k} x 1.4826 x MAD)`;
}
