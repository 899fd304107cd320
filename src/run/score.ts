// Scoring alone (`dlc-prune score`, the API's score) and run's scoring step. The executor settles what the
// score stage is handed: the model folder (src/run/model.ts), the shard, the cuts the selection needs, and the sessions (score.device
// and the threads; `auto` is resolved by the sessions once the stage has loaded the model, which it tries CUDA on).
import type { Config } from "../config/schema.js";
import type { Shard } from "../contract/names.js";
import { score, type ScoreOptions, type ScoreResult } from "../score/score.js";
import { sessionsOf } from "../score/setup.js";
import { cutsOf } from "../select/cuts.js";
import { modelToScore, type ModelToScore } from "./model.js";
import { checkBeforeScoring } from "./preflight.js";
import { defaultLog } from "./output.js";
import { resolveShard } from "./shard.js";

export type { ScoreOptions, ScoreProgress, ScoreResult } from "../score/score.js";
export { passLabel } from "../score/plan.js";

/** The score stage over `shard` on `model`, handed the cuts select ranks across and sessions on score.device. */
export async function scoreStage(config: Config, model: ModelToScore, opts: ScoreOptions & { shard: Shard | null }): Promise<ScoreResult> {
  const log = opts.log ?? defaultLog;
  const inputs = { cuts: cutsOf(config.select), sessions: sessionsOf(config.score, log), checkpoint: model.checkpoint };
  return score({ ...config, model: { ...config.model, path: model.path } }, inputs, { ...opts, log });
}

/**
 * Scores the data as `config` says: contradictions refused first (src/run/preflight.ts), the model folder
 * settled (the demo model built, a checkpoint converted), and the shard from `opts.shard` or else score.shard / score.shards (src/run/shard.ts).
 */
export async function scoreOnly(config: Config, opts: ScoreOptions = {}): Promise<ScoreResult> {
  checkBeforeScoring(config);
  const log = opts.log ?? defaultLog;
  const model = await modelToScore(config, log);
  const shard = opts.shard === undefined ? resolveShard(config.score.shard, config.score.shards) : opts.shard;
  return scoreStage(config, model, { ...opts, log, shard });
}
