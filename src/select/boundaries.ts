// The boundaries a selection needs DLC's order at (FlexRand's split, the top-K cuts), for score.refine:
// boundary (src/score/refine.ts), which computes exact DLC only near them, and for what the scores file,
// the manifest and the report say about the rows it estimated.
import type { SelectConfig } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { normalCdf, pyRound } from "../util/math.js";
import { selectionsOf } from "./select.js";

/** A boundary the selection needs DLC's order at: FlexRand's split, or a top-K cut at a keep ratio. */
export interface Cut {
  strategy: "flexrand" | "easy" | "hard";
  at: number;
}

/** The boundaries the DLC-ranked selections of `select` need (none for random, or for loss0 or ifd rankings). */
export function cutsOf(select: SelectConfig): Cut[] {
  const cuts: Cut[] = [];
  for (const c of selectionsOf(select)) {
    if (c.by !== "dlc" || c.strategy === "random") continue;
    if (c.strategy === "flexrand") cuts.push({ strategy: "flexrand", at: select.split });
    else for (const at of select.ratios) if (at < 1) cuts.push({ strategy: c.strategy, at });
  }
  const key = (c: Cut) => `${c.strategy} ${c.at}`;
  return [...new Map(cuts.map((c) => [key(c), c])).values()].sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

export const describeCut = (c: Cut) => (c.strategy === "flexrand" ? `flexrand split ${c.at}` : `${c.strategy} ${c.at}`);

/** The boundary's position among n rows in ascending DLC: rows before it are FlexRand's easy interval, or easy's top K, or not hard's. */
export function cutRank(c: Cut, n: number): number {
  return c.strategy === "hard" ? n - pyRound(n * c.at) : pyRound(n * c.at);
}

/** Each boundary's DLC: halfway between the rows on either side of its position (none at the ends). */
export function boundaryValues(values: number[], cuts: Cut[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return cuts.flatMap((c) => {
    const r = cutRank(c, sorted.length);
    return r > 0 && r < sorted.length ? [(sorted[r - 1]! + sorted[r]!) / 2] : [];
  });
}

/** P(a row's exact DLC is on the other side of some boundary than its estimate), under the normal model the rule uses. */
function misplacement(dlc: number, sd: number, boundaries: number[]): number {
  if (!(sd > 0)) return 0;
  return Math.min(
    1,
    boundaries.reduce((p, v) => p + normalCdf(-Math.abs(dlc - v) / sd), 0),
  );
}

/**
 * The expected share of scored rows on the same side of every boundary as their exact DLC would put them:
 * 1 - (expected misplaced rows) / (scored rows), over the rows with an estimate (`sd` > 0).
 */
export function expectedAgreement(dlc: Float64Array, sd: Float64Array, cuts: Cut[]): number {
  const scored: number[] = [];
  dlc.forEach((d, i) => !Number.isNaN(d) && scored.push(i));
  if (!scored.length) return 1;
  const boundaries = boundaryValues(
    scored.map((i) => dlc[i]!),
    cuts,
  );
  const misplaced = scored.reduce((a, i) => a + misplacement(dlc[i]!, sd[i]!, boundaries), 0);
  return 1 - misplaced / scored.length;
}

/** What a refined scoring (score.refine: boundary) gave, for the manifest and the report. */
export interface RefineSummary {
  /** Scored rows with exact DLC (every level ran), and with an estimate. */
  exact: number;
  estimated: number;
  /** Expected share of scored rows on the same side of every boundary as their exact DLC would put them. */
  expected_agreement: number;
  /** The boundaries refined for ("flexrand split 0.5", "hard 0.1"). */
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
    if (Number.isNaN(d)) return;
    if (cols.dlcExact![i]) exact++;
    else estimated++;
  });
  return { exact, estimated, expected_agreement: expectedAgreement(cols.dlc, cols.dlcSd, cuts), boundaries: cuts.map(describeCut) };
}

/**
 * Refined scores serve the selections they were refined for: a DLC-ranked selection needing another
 * boundary (another split or ratio), or stratified, would rank estimates it cannot trust.
 */
export function checkRefinedFor(cuts: Cut[] | undefined, select: SelectConfig, path: string): void {
  if (!cuts) return;
  const has = new Set(cuts.map(describeCut));
  const missing = cutsOf(select).filter((c) => !has.has(describeCut(c)));
  const fix = "rescore with this select config (run does it), or with score.refine none";
  if (select.stratify)
    throw new UserError(
      `${path}: scores refined without groups (score.refine boundary); select.stratify ${select.stratify} needs each group's boundaries: ${fix}`,
    );
  if (missing.length)
    throw new UserError(
      `${path}: DLC is exact only near ${[...has].join(", ") || "no boundary"} (score.refine boundary); this selection also needs ${missing.map(describeCut).join(", ")}: ${fix}`,
    );
}
