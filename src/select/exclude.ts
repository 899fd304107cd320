// select.exclude: scored rows set aside before any selection draws, each with the first rule of the list that
// names it (outliers, duplicates, duplicate_pairs, a score above or below a bound). One row of each
// duplicated response (or prompt and response) always stays: a duplicate is named only once an earlier row
// of its kind has stayed in the pool. Every selection and ratio draws from the rows left, so nested ratios
// stay nested.
import type { ExcludeRule } from "../config/schema.js";
import type { ScoreColumns } from "../contract/file.js";
import { hasScore } from "../contract/status.js";
import { UserError } from "../util/errors.js";

/** A rule as the outputs name it: "outliers", "duplicates", "ifd above 1", "dlc below 2 or above 9". */
export function describeRule(rule: ExcludeRule): string {
  if (typeof rule === "string") return rule;
  const bounds = [rule.below !== undefined && `below ${rule.below}`, rule.above !== undefined && `above ${rule.above}`].filter(Boolean);
  return `${rule.score} ${bounds.join(" or ")}`;
}

/** Row r's kind among the duplicates: the first row with its response (or prompt and response), itself when none is earlier. */
const kindOf = (of: Float64Array, r: number) => (hasScore(of[r]!) ? of[r]! : r);

/** Whether scored row `r` falls under `rule`; `staying`: the kinds (kindOf) with a row left in the pool so far. */
function matches(rule: ExcludeRule, cols: ScoreColumns, r: number, staying: { responses: Set<number>; pairs: Set<number> }): boolean {
  switch (rule) {
    case "outliers":
      return cols.outlier![r] === 1;
    case "duplicates":
      return hasScore(cols.duplicateOf[r]!) && staying.responses.has(cols.duplicateOf[r]!);
    case "duplicate_pairs":
      return hasScore(cols.duplicatePairOf[r]!) && staying.pairs.has(cols.duplicatePairOf[r]!);
    default: {
      const v = cols[rule.score]![r]!;
      return hasScore(v) && ((rule.above !== undefined && v > rule.above) || (rule.below !== undefined && v < rule.below));
    }
  }
}

/** Per row, the rule that excludes it (its description), or null; null altogether when there are no rules. */
export function exclusionsOf(cols: ScoreColumns, rules: ExcludeRule[], path: string): (string | null)[] | null {
  if (!rules.length) return null;
  for (const rule of rules) {
    if (rule === "outliers" && !cols.outlier)
      throw new UserError(`${path}: a shard's scores have no outlier flags; merge the shards first`);
    if (typeof rule === "object" && !cols[rule.score])
      throw new UserError(`select.exclude ${describeRule(rule)}: ${path} has no ${rule.score} column; score with score.ifd: true`);
  }
  const names = rules.map(describeRule);
  const staying = { responses: new Set<number>(), pairs: new Set<number>() };
  // In row order: the earliest row of each kind that no rule names stays.
  return Array.from(cols.dlc, (dlc, r) => {
    if (!hasScore(dlc)) return null;
    const i = rules.findIndex((rule) => matches(rule, cols, r, staying));
    if (i >= 0) return names[i]!;
    staying.responses.add(kindOf(cols.duplicateOf, r));
    staying.pairs.add(kindOf(cols.duplicatePairOf, r));
    return null;
  });
}
