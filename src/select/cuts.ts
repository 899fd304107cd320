// What select needs of the scores' order (the cuts contract, src/contract/cuts): the cuts its DLC-ranked
// selections rank across, asked by the executor before scoring, and checked when refined scores are read.
import type { SelectConfig } from "../config/schema.js";
import { describeCut, type Cut } from "../contract/cuts.js";
import { UserError } from "../util/errors.js";
import { selectionsOf } from "./select.js";

/** The cuts the DLC-ranked selections of `select` need (none for random, or for loss0 or ifd rankings). */
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
  if (select.exclude.length)
    throw new UserError(
      `${path}: scores refined for boundaries among all scored rows (score.refine boundary); select.exclude moves them: ${fix}`,
    );
  if (missing.length)
    throw new UserError(
      `${path}: DLC is exact only near ${[...has].join(", ") || "no boundary"} (score.refine boundary); this selection also needs ${missing.map(describeCut).join(", ")}: ${fix}`,
    );
}
