// The level loop: for each pass (a masking level, or IFD's responses alone), zero more weights when the level
// changes, open a session on them, and run every batch of the plan, saving progress for resume as it goes.
// Batches are right-padded; the scoring graph returns each target token's log-probability, and a row's loss
// in a pass is the mean NLL of its scored tokens.
import { performance } from "node:perf_hooks";
import type * as ort from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import { LOGPROBS_OUTPUT, TARGETS_INPUT, type ScoringModel } from "../model/scoring-graph.js";
import type { Encoded, Sequence } from "../text/encode.js";
import { Interrupted, UserError } from "../util/errors.js";
import type { Checkpoint, Progress } from "./checkpoint.js";
import type { MaskSchedule } from "./masking.js";
import type { Pass, ScorePlan } from "./plan.js";
import type { SessionFactory } from "./session.js";

/** Progress of the score stage: tokenizing (rows so far, rows/s), then the passes. */
export type ScoreProgress = { phase: "encode"; rowsDone: number; rate: number } | LevelProgress;

export interface LevelProgress {
  phase: "score";
  /** The masking level of the pass (0 is the unmasked model); shown counting from 1. */
  level: number;
  levels: number;
  /** The pass runs the responses alone (IFD's denominator). */
  alone: boolean;
  rowsDone: number;
  rowsTotal: number;
  /** Non-padding tokens run through the model, over all passes (including before a resume). */
  tokensDone: number;
  tokensTotal: number;
  /** Tokens per second of this process's passes (masking and session creation excluded). */
  rate: number;
  /** Seconds until the whole job ends (every remaining pass, with its masking and session), when known. */
  etaSeconds: number | null;
}

/** Wall time of one pass: zeroing weights, creating the session (both 0 when the pass reuses them), the batches. */
export interface LevelSeconds {
  mask: number;
  session: number;
  pass: number;
}

/**
 * Counts rows and tokens across passes (a resumed run starts part-way) and estimates the time left for the
 * whole job. Every masking level runs the same batches, so once one has run in full its time per batch is
 * the estimate for the others; before that, this process's token rate over the passes so far (the first
 * batches, the longest, are the slowest per token: the first estimate errs long).
 */
export class ProgressMeter {
  private tokensDone: number;
  private rowsDone: number;
  private passTokens = 0;
  private passSeconds = 0;
  private setups: number[] = [];
  /** Seconds into the pass after each batch: of the pass running, and of the first level run in full. */
  private curve: number[] = [];
  private fullLevel: number[] | null = null;
  private pass: number;
  private passStart = 0;

  constructor(
    private readonly plan: ScorePlan,
    private readonly passes: Pass[],
    from: Progress,
    private readonly report: (p: ScoreProgress) => void = () => {},
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.pass = from.pass;
    this.tokensDone = passes.slice(0, from.pass).reduce((a, p) => a + p.tokens, 0) + passes[from.pass]!.batchTokens.slice(0, from.nextBatch).reduce((a, b) => a + b, 0);
    this.rowsDone = plan.batches.slice(0, from.nextBatch).reduce((a, b) => a + b.members.length, 0);
  }

  /** A pass begins, after `setupSeconds` of masking and session creation (0 when it reuses the session). */
  passStarted(pass: number, setupSeconds: number): void {
    this.pass = pass;
    if (!this.passes[pass]!.alone) this.setups.push(setupSeconds);
    this.curve = [];
    this.passStart = this.now();
  }

  batchDone(b: number): void {
    const pass = this.passes[this.pass]!;
    const t = this.now() - this.passStart;
    this.passSeconds += t - (this.curve.at(-1) ?? 0);
    this.curve.push(t);
    this.tokensDone += pass.batchTokens[b]!;
    this.passTokens += pass.batchTokens[b]!;
    this.rowsDone += this.plan.batches[b]!.members.length;
    this.report({
      phase: "score",
      level: pass.level,
      levels: this.passes.filter((p) => !p.alone).length,
      alone: pass.alone,
      rowsDone: this.rowsDone,
      rowsTotal: this.plan.passRows,
      tokensDone: this.tokensDone,
      tokensTotal: this.passes.reduce((a, p) => a + p.tokens, 0),
      rate: this.passTokens / Math.max(this.passSeconds, 1e-9),
      etaSeconds: this.eta(b),
    });
  }

  passDone(): void {
    // A level resumed part-way has no full curve.
    if (!this.fullLevel && !this.passes[this.pass]!.alone && this.curve.length === this.plan.batches.length) this.fullLevel = this.curve;
    this.rowsDone = 0;
  }

  private eta(b: number): number | null {
    if (this.passSeconds <= 0) return null;
    const rate = this.passTokens / this.passSeconds;
    const setup = this.setups.length ? this.setups.reduce((a, x) => a + x, 0) / this.setups.length : 0;
    const later = this.passes.slice(this.pass + 1);
    const current = this.passes[this.pass]!;
    // A masking level takes as long as the first one run in full; the responses alone, by the token rate.
    const passTime = (p: Pass) => (!p.alone && this.fullLevel ? this.fullLevel.at(-1)! : p.tokens / rate);
    const rest = !current.alone && this.fullLevel ? this.fullLevel.at(-1)! - this.fullLevel[b]! : current.batchTokens.slice(b + 1).reduce((a, x) => a + x, 0) / rate;
    return rest + later.reduce((a, p) => a + passTime(p) + (p.alone ? 0 : setup), 0);
  }
}

const i64 = (data: BigInt64Array, dims: number[]) => new Tensor("int64", data, dims);

/** Inputs of one right-padded batch: the model reads ids[0..n-2] and is scored on ids[1..n-1]. */
function batchFeeds(sequences: Sequence[], length: number, model: ScoringModel, padId: number): Record<string, ort.Tensor> {
  const B = sequences.length;
  const L = length;
  const ids = new BigInt64Array(B * L).fill(BigInt(padId));
  const mask = new BigInt64Array(B * L);
  const positions = new BigInt64Array(B * L);
  const targets = new BigInt64Array(B * L);
  sequences.forEach(({ ids: seq }, b) => {
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

/** Mean NLL (nats) over each sequence's scored tokens. */
function batchLosses(sequences: Sequence[], length: number, logprobs: Float32Array): number[] {
  return sequences.map((q, b) => {
    let sum = 0;
    // Token p is predicted at input position p - 1.
    for (const [start, end] of q.spans) for (let p = start; p < end; p++) sum -= logprobs[b * length + p - 1]!;
    return sum / q.tokens;
  });
}

/** Sequences through a session, right-padded to `length`: each one's loss (mean NLL of its scored tokens). */
export async function runBatch(session: ort.InferenceSession, model: ScoringModel, sequences: Sequence[], length: number, padId: number): Promise<number[]> {
  const result = await session.run(batchFeeds(sequences, length, model, padId)).catch((err: Error) => {
    // A model that does not fit the scorer's inputs, or a batch the device cannot hold.
    throw new UserError(`${model.dir}: onnxruntime failed on a batch of ${sequences.length} rows x ${length} tokens (${err.message.split("\n")[0]}); check the model folder, or lower score.batch_tokens`);
  });
  return batchLosses(sequences, length, (result[LOGPROBS_OUTPUT] as ort.Tensor).data as Float32Array);
}

export interface LevelLoop {
  model: ScoringModel;
  padId: number;
  encoded: Encoded[];
  plan: ScorePlan;
  passes: Pass[];
  schedule: MaskSchedule;
  sessions: SessionFactory;
  checkpoint: Checkpoint;
  checkpointSeconds: number;
  meter: ProgressMeter;
  /** Aborted: save progress after the batch running, then stop (Interrupted). */
  signal?: AbortSignal;
}

/**
 * Runs passes `from.pass`.. (from batch `from.nextBatch` of the first) into `losses`: row-major, one column
 * per pass. A pass on the weights of the one before reuses its session; a row without a sequence for the
 * pass (no response alone) keeps NaN.
 */
export async function scoreLevels(loop: LevelLoop, from: Progress, losses: Float64Array): Promise<LevelSeconds[]> {
  const { model, padId, encoded, plan, passes, schedule, sessions, checkpoint, meter } = loop;
  const P = passes.length;
  const seconds: LevelSeconds[] = [];
  let lastSave = performance.now();
  let session: ort.InferenceSession | undefined;
  let sessionLevel = -1;
  try {
    for (let p = from.pass; p < P; p++) {
      const pass = passes[p]!;
      const t0 = performance.now();
      let t1 = t0;
      if (pass.level !== sessionLevel) {
        schedule.applyLevel(pass.level);
        t1 = performance.now();
        await session?.release();
        session = await sessions.create(model);
        sessionLevel = pass.level;
      }
      const t2 = performance.now();
      meter.passStarted(p, (t2 - t0) / 1000);
      for (let b = p === from.pass ? from.nextBatch : 0; b < plan.batches.length; b++) {
        const members = plan.batches[b]!.members.filter((m) => !pass.alone || encoded[m]!.alone);
        const sequences = members.map((m) => (pass.alone ? encoded[m]!.alone! : encoded[m]!));
        if (sequences.length) {
          const values = await runBatch(session!, model, sequences, pass.lengths[b]!, padId);
          members.forEach((m, j) => (losses[m * P + p] = values[j]!));
        }
        meter.batchDone(b);
        if (loop.signal?.aborted) {
          await checkpoint.save({ pass: p, nextBatch: b + 1 }, losses);
          throw new Interrupted();
        }
        if ((performance.now() - lastSave) / 1000 >= loop.checkpointSeconds) {
          await checkpoint.save({ pass: p, nextBatch: b + 1 }, losses);
          lastSave = performance.now();
        }
      }
      seconds.push({ mask: (t1 - t0) / 1000, session: (t2 - t1) / 1000, pass: (performance.now() - t2) / 1000 });
      meter.passDone();
      await checkpoint.save({ pass: p + 1, nextBatch: 0 }, losses);
    }
  } finally {
    await session?.release();
  }
  return seconds;
}
