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

/**
 * The batches of the encoded rows (a shard's, when it encoded only its own). `byPosition` (estimate, which may
 * read a sample of the rows): blocks of score.block_rows rows read, as a run's blocks hold that many rows.
 */
export function planOf(data: EncodedDataset, s: ScoreConfig, byPosition = false): ScorePlan {
  let rows = data.encoded.map((e) => e.row);
  if (byPosition) {
    const read = [...rows, ...data.unscored.map((u) => u.row)].sort((a, b) => a - b);
    const position = new Map(read.map((row, i) => [row, i]));
    rows = rows.map((row) => position.get(row)!);
  }
  return planScoring(
    data.encoded.map((e) => e.ids.length - 1),
    rows,
    s.block_rows,
    s.batch_tokens,
  );
}

/** The status of every row this process encoded (a shard, its own), scored or not. */
export const statusesOf = (data: EncodedDataset): string[] => [...data.encoded.map((e) => e.status), ...data.unscored.map((u) => u.status)];

/** "ok 10, truncated 2; 3 batches, padding 4.0%": this process's rows by status (a shard's named), and how they pack. */
export const describePlan = (data: EncodedDataset, plan: ScorePlan, shard: Shard | null): string =>
  `${shard ? `shard ${shard.index}/${shard.count}'s ${statusesOf(data).length} rows: ` : ""}${describeStatuses(statusesOf(data))}; ${plan.batches.length} batches, padding ${(100 * plan.padding).toFixed(1)}%`;

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
