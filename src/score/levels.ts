// The level loop: for each masking level, zero more weights, open a session on them, and run every batch of
// the plan, saving progress for resume as it goes. Batches are right-padded; the scoring graph returns each
// target token's log-probability, and a row's loss at a level is the mean NLL of its response tokens.
import { performance } from "node:perf_hooks";
import type * as ort from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import { LOGPROBS_OUTPUT, TARGETS_INPUT, type ScoringModel } from "../model/scoring-graph.js";
import type { Encoded } from "../text/encode.js";
import { Interrupted, UserError } from "../util/errors.js";
import type { Checkpoint, Progress } from "./checkpoint.js";
import type { MaskSchedule } from "./masking.js";
import type { Batch, ScorePlan } from "./plan.js";
import type { SessionFactory } from "./session.js";

/** Progress of the score stage: tokenizing (rows so far, rows/s), then the passes. */
export type ScoreProgress = { phase: "encode"; rowsDone: number; rate: number } | LevelProgress;

export interface LevelProgress {
  phase: "score";
  /** 0-based (level 0 is the unmasked model); shown counting from 1. */
  level: number;
  levels: number;
  rowsDone: number;
  rowsTotal: number;
  /** Non-padding tokens run through the model, over all levels (including before a resume). */
  tokensDone: number;
  tokensTotal: number;
  /** Tokens per second of this process's passes (masking and session creation excluded). */
  rate: number;
  /** Seconds until the whole job ends (every remaining level, with its masking and session), when known. */
  etaSeconds: number | null;
}

/** Wall time of one level: zeroing weights, creating the session, the pass over the batches. */
export interface LevelSeconds {
  mask: number;
  session: number;
  pass: number;
}

/**
 * Counts rows and tokens across levels (a resumed run starts part-way) and estimates the time left for the
 * whole job. Every level runs the same batches, so once one level has run in full its time per batch is
 * the estimate for the others; before that, this process's token rate over the passes so far (the first
 * batches, the longest, are the slowest per token: the first estimate errs long).
 */
export class ProgressMeter {
  private tokensDone: number;
  private rowsDone: number;
  private passTokens = 0;
  private passSeconds = 0;
  private setups: number[] = [];
  /** Seconds into the level after each batch: of the level running, and of the first level run in full. */
  private curve: number[] = [];
  private fullLevel: number[] | null = null;
  private level: number;
  private levelStart = 0;

  constructor(
    private readonly plan: ScorePlan,
    private readonly levels: number,
    from: Progress,
    private readonly report: (p: ScoreProgress) => void = () => {},
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.level = from.level;
    this.tokensDone = from.level * plan.passTokens + plan.batchTokens.slice(0, from.nextBatch).reduce((a, b) => a + b, 0);
    this.rowsDone = plan.batches.slice(0, from.nextBatch).reduce((a, b) => a + b.members.length, 0);
  }

  /** A level's pass begins, after `setupSeconds` of masking and session creation. */
  levelStarted(level: number, setupSeconds: number): void {
    this.level = level;
    this.setups.push(setupSeconds);
    this.curve = [];
    this.levelStart = this.now();
  }

  batchDone(b: number): void {
    const t = this.now() - this.levelStart;
    this.passSeconds += t - (this.curve.at(-1) ?? 0);
    this.curve.push(t);
    this.tokensDone += this.plan.batchTokens[b]!;
    this.passTokens += this.plan.batchTokens[b]!;
    this.rowsDone += this.plan.batches[b]!.members.length;
    this.report({
      phase: "score",
      level: this.level,
      levels: this.levels,
      rowsDone: this.rowsDone,
      rowsTotal: this.plan.passRows,
      tokensDone: this.tokensDone,
      tokensTotal: this.plan.passTokens * this.levels,
      rate: this.passTokens / Math.max(this.passSeconds, 1e-9),
      etaSeconds: this.eta(b),
    });
  }

  levelDone(): void {
    // A level resumed part-way has no full curve.
    if (!this.fullLevel && this.curve.length === this.plan.batches.length) this.fullLevel = this.curve;
    this.rowsDone = 0;
  }

  private eta(b: number): number | null {
    const levelsAfter = this.levels - 1 - this.level;
    const setup = this.setups.reduce((a, x) => a + x, 0) / this.setups.length;
    if (this.fullLevel) {
      const levelTime = this.fullLevel.at(-1)!;
      return levelTime - this.fullLevel[b]! + levelsAfter * (setup + levelTime);
    }
    if (this.passSeconds <= 0) return null;
    const rate = this.passTokens / this.passSeconds;
    return (this.plan.passTokens * this.levels - this.tokensDone) / rate + levelsAfter * setup;
  }
}

const i64 = (data: BigInt64Array, dims: number[]) => new Tensor("int64", data, dims);

/** Inputs of one right-padded batch: the model reads ids[0..n-2] and is scored on ids[1..n-1]. */
function batchFeeds(batch: Batch, encoded: Encoded[], model: ScoringModel, padId: number): Record<string, ort.Tensor> {
  const B = batch.members.length;
  const L = batch.length;
  const ids = new BigInt64Array(B * L).fill(BigInt(padId));
  const mask = new BigInt64Array(B * L);
  const positions = new BigInt64Array(B * L);
  const targets = new BigInt64Array(B * L);
  batch.members.forEach((m, b) => {
    const seq = encoded[m]!.ids;
    for (let t = 0; t + 1 < seq.length; t++) {
      ids[b * L + t] = BigInt(seq[t]!);
      targets[b * L + t] = BigInt(seq[t + 1]!);
      mask[b * L + t] = 1n;
      positions[b * L + t] = BigInt(t);
    }
  });
  const feeds: Record<string, ort.Tensor> = {
    [model.inputs.ids]: i64(ids, [B, L]),
    [model.inputs.mask]: i64(mask, [B, L]),
    [TARGETS_INPUT]: i64(targets, [B, L]),
  };
  if (model.inputs.positions) feeds[model.inputs.positions] = i64(positions, [B, L]);
  for (const p of model.inputs.past)
    feeds[p.name] = p.type === "float16" ? new Tensor("float16", new Uint16Array(0), [B, p.dims[0], 0, p.dims[1]]) : new Tensor("float32", new Float32Array(0), [B, p.dims[0], 0, p.dims[1]]);
  return feeds;
}

/** Mean NLL (nats) over each member's response tokens. */
function batchLosses(batch: Batch, encoded: Encoded[], logprobs: Float32Array): number[] {
  const L = batch.length;
  return batch.members.map((m, b) => {
    const e = encoded[m]!;
    let sum = 0;
    // Token p is predicted at input position p - 1.
    for (const [start, end] of e.spans) for (let p = start; p < end; p++) sum -= logprobs[b * L + p - 1]!;
    return sum / e.tokens;
  });
}

/** One batch through a session: each member's loss (mean response NLL) at the session's level. */
export async function runBatch(session: ort.InferenceSession, model: ScoringModel, batch: Batch, encoded: Encoded[], padId: number): Promise<number[]> {
  const result = await session.run(batchFeeds(batch, encoded, model, padId)).catch((err: Error) => {
    // A model that does not fit the scorer's inputs, or a batch the device cannot hold.
    throw new UserError(`${model.dir}: onnxruntime failed on a batch of ${batch.members.length} rows x ${batch.length} tokens (${err.message.split("\n")[0]}); check the model folder, or lower score.batch_tokens`);
  });
  return batchLosses(batch, encoded, (result[LOGPROBS_OUTPUT] as ort.Tensor).data as Float32Array);
}

export interface LevelLoop {
  model: ScoringModel;
  padId: number;
  encoded: Encoded[];
  plan: ScorePlan;
  schedule: MaskSchedule;
  sessions: SessionFactory;
  checkpoint: Checkpoint;
  checkpointSeconds: number;
  meter: ProgressMeter;
  /** Aborted: save progress after the batch running, then stop (Interrupted). */
  signal?: AbortSignal;
}

/** Scores levels `from.level`..K-1 (from batch `from.nextBatch` of the first) into `losses` (row-major, K per encoded row). */
export async function scoreLevels(loop: LevelLoop, from: Progress, losses: Float64Array, K: number): Promise<LevelSeconds[]> {
  const { model, padId, encoded, plan, schedule, sessions, checkpoint, meter } = loop;
  const seconds: LevelSeconds[] = [];
  let lastSave = performance.now();
  for (let level = from.level; level < K; level++) {
    const t0 = performance.now();
    schedule.applyLevel(level);
    const t1 = performance.now();
    const session = await sessions.create(model);
    const t2 = performance.now();
    meter.levelStarted(level, (t2 - t0) / 1000);
    try {
      for (let b = level === from.level ? from.nextBatch : 0; b < plan.batches.length; b++) {
        const batch = plan.batches[b]!;
        const values = await runBatch(session, model, batch, encoded, padId);
        batch.members.forEach((m, j) => (losses[m * K + level] = values[j]!));
        meter.batchDone(b);
        if (loop.signal?.aborted) {
          await checkpoint.save({ level, nextBatch: b + 1 }, losses);
          throw new Interrupted();
        }
        if ((performance.now() - lastSave) / 1000 >= loop.checkpointSeconds) {
          await checkpoint.save({ level, nextBatch: b + 1 }, losses);
          lastSave = performance.now();
        }
      }
    } finally {
      await session.release();
    }
    seconds.push({ mask: (t1 - t0) / 1000, session: (t2 - t1) / 1000, pass: (performance.now() - t2) / 1000 });
    meter.levelDone();
    await checkpoint.save({ level: level + 1, nextBatch: 0 }, losses);
  }
  return seconds;
}
