// Row statuses: a scored row is "ok" or "truncated" (scored on the tokens that fit score.max_tokens); any
// other status says why a row has no score. Every summary (log, manifest, report) counts them all.
import { countBy, describeCounts } from "../util/counts.js";

export const SCORED_STATUSES = ["ok", "truncated"] as const;

/** Each status's count, the scored ones first (always shown, zero included). */
export function statusCounts(statuses: Iterable<string>): Record<string, number> {
  return { ok: 0, truncated: 0, ...countBy(statuses) };
}

/** The counts of the statuses that have no score (every status but ok and truncated), zero counts dropped. */
export function unscoredCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([s, n]) => n && !(SCORED_STATUSES as readonly string[]).includes(s)));
}

/** "84 ok, 2 truncated; 1 unscored (1 empty-response)" */
export function describeStatuses(statuses: Iterable<string>): string {
  const counts = statusCounts(statuses);
  const unscored = unscoredCounts(counts);
  const n = Object.values(unscored).reduce((a, b) => a + b, 0);
  return `${counts.ok} ok, ${counts.truncated} truncated; ${n} unscored${n ? ` (${describeCounts(unscored)})` : ""}`;
}

/** A row has this score (NaN: it has none; its status, or a non-finite IFD, says why). */
export const hasScore = (value: number) => !Number.isNaN(value);

/** The rows with a score in `values`, ascending. */
export function scoredRows(values: Float64Array): number[] {
  const rows: number[] = [];
  values.forEach((v, r) => hasScore(v) && rows.push(r));
  return rows;
}
