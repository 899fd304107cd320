// The cuts contract: where a selection needs DLC's order exact (FlexRand's split, the top-K cuts at each keep
// ratio), their positions among the scored rows, and the expected agreement of refined scores with exact ones.
// The executor (src/run/) asks select which cuts it needs and hands them to the score stage (score.refine:
// boundary computes exact DLC only near them); the scores file records them, and the manifest and the report
// say from them how far the estimates can be trusted.
import { z } from "zod";
import { normalCdf, pyRound } from "../util/math.js";
import { hasScore, scoredRows } from "./status.js";

/** A place the selection needs DLC's order at: FlexRand's split (`at` = select.split), or a top-K cut (`at` = a keep ratio). */
export const cutSchema = z.object({ strategy: z.enum(["flexrand", "easy", "hard"]), at: z.number() });
export type Cut = z.infer<typeof cutSchema>;

/** The easy interval's size among n rows at FlexRand's split: what FlexRand draws its easy rows from. */
export const easyIntervalSize = (n: number, split: number) => pyRound(n * split);

export const describeCut = (c: Cut) => (c.strategy === "flexrand" ? `flexrand split ${c.at}` : `${c.strategy} ${c.at}`);

/** The cut's position among n rows in ascending DLC: rows before it are FlexRand's easy interval, or easy's top K, or not hard's. */
export function cutRank(c: Cut, n: number): number {
  if (c.strategy === "flexrand") return easyIntervalSize(n, c.at);
  const k = pyRound(n * c.at);
  return c.strategy === "hard" ? n - k : k;
}

/** Each cut's DLC value: halfway between the rows on either side of its position (none at the ends). */
export function cutValues(values: number[], cuts: Cut[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return cuts.flatMap((c) => {
    const r = cutRank(c, sorted.length);
    return r > 0 && r < sorted.length ? [(sorted[r - 1]! + sorted[r]!) / 2] : [];
  });
}

/** P(a row's exact DLC is on the other side of some cut's value than its estimate), under the normal model the rule uses. */
function misplacement(dlc: number, sd: number, values: number[]): number {
  if (!(sd > 0)) return 0;
  return Math.min(
    1,
    values.reduce((p, v) => p + normalCdf(-Math.abs(dlc - v) / sd), 0),
  );
}

/**
 * The expected share of scored rows on the same side of every cut as their exact DLC would put them:
 * 1 - (expected misplaced rows) / (scored rows), over the rows with an estimate (`sd` > 0).
 */
export function expectedAgreement(dlc: Float64Array, sd: Float64Array, cuts: Cut[]): number {
  const scored = scoredRows(dlc);
  if (!scored.length) return 1;
  const values = cutValues(
    scored.map((i) => dlc[i]!),
    cuts,
  );
  const misplaced = scored.reduce((a, i) => a + misplacement(dlc[i]!, sd[i]!, values), 0);
  return 1 - misplaced / scored.length;
}

/** What a refined scoring (score.refine: boundary) gave, for the manifest and the report. */
export interface RefineSummary {
  /** Scored rows with exact DLC (every level ran), and with an estimate. */
  exact: number;
  estimated: number;
  /** Expected share of scored rows on the same side of every cut as their exact DLC would put them. */
  expected_agreement: number;
  /** The cuts refined for ("flexrand split 0.5", "hard 0.1"); the manifest's key keeps its name. */
  boundaries: string[];
}

export function refineSummary(
  cols: { dlc: Float64Array; dlcExact: Uint8Array | null; dlcSd: Float64Array | null },
  cuts: Cut[] | undefined,
): RefineSummary | null {
  if (!cuts || !cols.dlcExact || !cols.dlcSd) return null;
  let exact = 0;
  let estimated = 0;
  cols.dlc.forEach((d, i) => {
    if (!hasScore(d)) return;
    if (cols.dlcExact![i]) exact++;
    else estimated++;
  });
  return { exact, estimated, expected_agreement: expectedAgreement(cols.dlc, cols.dlcSd, cuts), boundaries: cuts.map(describeCut) };
}
