// Contradictions between config keys that are known before any scoring: refused by run, score, estimate and
// run --dry-run before the expensive stage, naming the keys, instead of after hours of scoring.
import type { Config, SelectionsConfig } from "../config/schema.js";
import { selectionsOf } from "../select/select.js";
import { UserError } from "../util/errors.js";

/** What the checks read: the scoring config, and the selections select will make. */
export type PreflightConfig = Pick<Config, "score"> & { select: SelectionsConfig };

export function checkBeforeScoring(config: PreflightConfig): void {
  const { score, select } = config;
  const byIfd = selectionsOf(select).filter((c) => c.by === "ifd");
  if (byIfd.length && !score.ifd)
    throw new UserError(
      `select ranks by ifd (${byIfd.map((c) => c.name).join(", ")}) but score.ifd is false: set score.ifd: true, or rank by dlc or loss0`,
    );
  if (score.refine === "boundary" && select.stratify)
    throw new UserError(
      `score.refine boundary with select.stratify ${select.stratify}: refinement does not compute each group's boundaries yet; use score.refine none, or drop select.stratify`,
    );
  const byScore = select.exclude.flatMap((r) => (typeof r === "object" && r.score === "ifd" ? [r] : []));
  if (byScore.length && !score.ifd)
    throw new UserError(`select.exclude {score: ifd} needs IFD, but score.ifd is false: set score.ifd: true, or drop the rule`);
  if (score.refine === "boundary" && select.exclude.length)
    throw new UserError(
      `score.refine boundary with select.exclude: the boundaries move with the rows excluded, known only once scored, so estimated DLC could fall on either side; use score.refine none, or drop select.exclude`,
    );
  if (score.merge.length && (score.shard || score.shards))
    throw new UserError(
      `score.merge with ${score.shard ? `score.shard ${score.shard}` : `score.shards ${score.shards}`}: a run either scores one shard or merges the shards; drop one of them`,
    );
}
