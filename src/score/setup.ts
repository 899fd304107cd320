// What scoring and the estimate of its cost set up alike once the rows are encoded: the batch plan and its
// summary line, each pass's input lengths, the mask schedule and the sessions.
import type { Config, ScoreConfig } from "../config/schema.js";
import type { Shard } from "../contract/names.js";
import { describeStatuses } from "../contract/status.js";
import type { ScoringModel } from "../model/scoring-graph.js";
import type { Encoded, EncodedDataset } from "../text/encode.js";
import { MaskSchedule } from "./masking.js";
import { planScoring, type ScorePlan } from "./plan.js";
import { SessionFactory, threadCount } from "./session.js";

/** What the score stage reads of a config: never `select`, whose needs (the cuts) the executor hands over. */
export type ScoringConfig = Pick<Config, "data" | "model" | "template" | "score">;

/** Row m's model input length in a pass: its whole sequence, or its response alone (IFD; null when it has none). */
export const inputLength =
  (encoded: Encoded[], alone: boolean) =>
  (m: number): number | null => {
    const e = encoded[m]!;
    if (!alone) return e.ids.length - 1;
    return e.alone ? e.alone.ids.length - 1 : null;
  };

/** One plan for all rows; a shard runs its share of the batches. */
export const planOf = (data: EncodedDataset, s: ScoreConfig, shard: Shard | null): ScorePlan =>
  planScoring(
    data.encoded.map((e) => e.ids.length - 1),
    s.batch_tokens,
    shard,
  );

/** Every row's status, scored or not. */
export const statusesOf = (data: EncodedDataset): string[] => [...data.encoded.map((e) => e.status), ...data.unscored.map((u) => u.status)];

/** "ok 10, truncated 2; 3 batches, padding 4.0%": the rows by status, and how this process's share packs. */
export const describePlan = (data: EncodedDataset, plan: ScorePlan, shard: Shard | null): string =>
  `${describeStatuses(statusesOf(data))}; ${shard ? `shard ${shard.index}/${shard.count}: ${plan.passRows} rows, ` : ""}${plan.batches.length} batches, padding ${(100 * plan.padding).toFixed(1)}%`;

/** The masking levels of score.*; `restartable`: can go back to level 0 (reading the unmasked weights again). */
export const maskScheduleOf = (model: ScoringModel, s: ScoreConfig, restartable = false): MaskSchedule =>
  new MaskSchedule(model.maskable, {
    file: model.onnxPath,
    scope: s.scope,
    method: s.method,
    interval: s.interval,
    levels: s.levels,
    seed: s.seed,
    restore: restartable ? model.restoreMaskable : undefined,
  });

/** Sessions on score.device with score.threads (0: the machine's cores); the device is settled on the first model. */
export const sessionsOf = (s: ScoreConfig, log: (line: string) => void): SessionFactory =>
  new SessionFactory(s.device, threadCount(s.threads), log);
