// The level loop: for each pass (a masking level, or IFD's responses alone), zero more weights when the level
// changes (the session sees them, src/score/session.ts), and run every batch of the plan, saving progress for resume as it goes.
// Batches are right-padded; the scoring graph returns each target token's log-probability, and a row's loss
// in a pass is the mean NLL of its scored tokens.
import { performance } from "node:perf_hooks";
import type * as ort from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import { LOGPROBS_OUTPUT, POSITIONS_INPUT, TARGETS_INPUT, type ScoringModel } from "../model/scoring-graph.js";
import type { Encoded, Sequence } from "../text/encode.js";
import { Interrupted, UserError } from "../util/errors.js";
import type { Checkpoint, Progress } from "./checkpoint.js";
import type { MaskSchedule } from "./masking.js";
import type { Pass, PassLayout, PassRows, ScorePlan } from "./plan.js";
import type { LevelSession, SessionFactory } from "./session.js";

/** Progress of the score stage: tokenizing (rows so far, rows/s), then the passes. */
export type ScoreProgress = { phase: "encode"; rowsDone: number; rate: number } | LevelProgress;

export interface LevelProgress {
  phase: "score";
  /** The masking level of the pass (0 is the unmasked model); shown counting from 1. */
  level: number;
  levels: number;
  /** The pass runs the responses alone (IFD's denominator). */
  alone: boolean;
  /** Which rows the pass runs (all, or with score.refine the calibration sample or the undecided rows). */
  rows: PassRows;
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
 * whole job. Every masking level over all rows runs the same batches, so once one has run in full its time
 * per batch is the estimate for the others; before that, and for passes over some of the rows, this
 * process's token rate over the passes so far (the first batches, the longest, are the slowest per token:
 * the first estimate errs long). `layouts`: each pass's rows where known; a pass whose rows are decided when
 * it starts (refinement) counts, until then, as the last such pass, or as a full one.
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
    private readonly layouts: (PassLayout | null)[],
    private readonly passes: Pass[],
    private readonly full: PassLayout,
    from: Progress,
    private readonly report: (p: ScoreProgress) => void = () => {},
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.pass = from.pass;
    const current = layouts[from.pass] ?? full;
    this.tokensDone =
      layouts.slice(0, from.pass).reduce((a, l) => a + l!.tokens, 0) +
      current.batchTokens.slice(0, from.nextBatch).reduce((a, b) => a + b, 0);
    this.rowsDone = current.members.slice(0, from.nextBatch).reduce((a, ms) => a + ms.length, 0);
  }

  /** The rows a pass runs (known, or estimated as above). */
  private layout(p: number): PassLayout {
    const known = this.layouts[p];
    if (known) return known;
    const similar = this.layouts.findLast((l, q) => l && this.passes[q]!.rows === this.passes[p]!.rows);
    return similar ?? this.full;
  }

  /** Tokens of pass p: run, or expected as above. */
  tokensOf(p: number): number {
    return this.layout(p).tokens;
  }

  /** A pass begins with its rows, after `setupSeconds` of masking and session creation (0 when it reuses the session). */
  passStarted(pass: number, setupSeconds: number, layout: PassLayout): void {
    this.pass = pass;
    this.layouts[pass] = layout;
    if (!this.passes[pass]!.alone) this.setups.push(setupSeconds);
    this.curve = [];
    this.passStart = this.now();
  }

  batchDone(b: number): void {
    const pass = this.passes[this.pass]!;
    const layout = this.layout(this.pass);
    const t = this.now() - this.passStart;
    this.passSeconds += t - (this.curve.at(-1) ?? 0);
    this.curve.push(t);
    this.tokensDone += layout.batchTokens[b]!;
    this.passTokens += layout.batchTokens[b]!;
    this.rowsDone += layout.members[b]!.length;
    this.report({
      phase: "score",
      level: pass.level,
      levels: Math.max(...this.passes.map((p) => p.level)) + 1,
      alone: pass.alone,
      rows: pass.rows,
      rowsDone: this.rowsDone,
      rowsTotal: layout.rows,
      tokensDone: this.tokensDone,
      tokensTotal: this.passes.reduce((a, _, p) => a + this.layout(p).tokens, 0),
      rate: this.passTokens / Math.max(this.passSeconds, 1e-9),
      etaSeconds: this.eta(b),
    });
  }

  passDone(): void {
    // A level resumed part-way has no full curve.
    const pass = this.passes[this.pass]!;
    if (!this.fullLevel && !pass.alone && pass.rows === "all" && this.curve.length === this.full.members.length)
      this.fullLevel = this.curve;
    this.rowsDone = 0;
  }

  private eta(b: number): number | null {
    if (this.passSeconds <= 0) return null;
    const rate = this.passTokens / this.passSeconds;
    const setup = this.setups.length ? this.setups.reduce((a, x) => a + x, 0) / this.setups.length : 0;
    // A masking level over all rows takes as long as the first one run in full; other passes, by the token rate.
    const byCurve = (p: Pass) => !p.alone && p.rows === "all" && this.fullLevel !== null;
    const current = this.passes[this.pass]!;
    const rest = byCurve(current)
      ? this.fullLevel!.at(-1)! - this.fullLevel![b]!
      : this.layout(this.pass)
          .batchTokens.slice(b + 1)
          .reduce((a, x) => a + x, 0) / rate;
    let later = 0;
    for (let p = this.pass + 1; p < this.passes.length; p++) {
      const pass = this.passes[p]!;
      const sessionChange = pass.level !== this.passes[p - 1]!.level;
      later += (byCurve(pass) ? this.fullLevel!.at(-1)! : this.layout(p).tokens / rate) + (sessionChange ? setup : 0);
    }
    return rest + later;
  }
}

const i64 = (data: BigInt64Array, dims: number[]) => new Tensor("int64", data, dims);

/**
 * Inputs of one right-padded batch: the model reads ids[0..n-2]; the scored tokens (each sequence's spans)
 * are named by their flat input position (row × length + position before them) and their id.
 */
function batchFeeds(sequences: Sequence[], length: number, model: ScoringModel, padId: number): Record<string, ort.Tensor> {
  const B = sequences.length;
  const L = length;
  const ids = new BigInt64Array(B * L).fill(BigInt(padId));
  const mask = new BigInt64Array(B * L);
  const positions = new BigInt64Array(B * L);
  const scored = sequences.reduce((a, q) => a + q.tokens, 0);
  const at = new BigInt64Array(scored);
  const targets = new BigInt64Array(scored);
  let n = 0;
  sequences.forEach(({ ids: seq, spans }, b) => {
    for (let t = 0; t + 1 < seq.length; t++) {
      ids[b * L + t] = BigInt(seq[t]!);
      mask[b * L + t] = 1n;
      positions[b * L + t] = BigInt(t);
    }
    // Token p is predicted at input position p - 1.
    for (const [start, end] of spans)
      for (let p = start; p < end; p++, n++) {
        at[n] = BigInt(b * L + p - 1);
        targets[n] = BigInt(seq[p]!);
      }
  });
  const feeds: Record<string, ort.Tensor> = {
    [model.inputs.ids]: i64(ids, [B, L]),
    [model.inputs.mask]: i64(mask, [B, L]),
    [POSITIONS_INPUT]: i64(at, [scored]),
    [TARGETS_INPUT]: i64(targets, [scored]),
  };
  if (model.inputs.positions) feeds[model.inputs.positions] = i64(positions, [B, L]);
  for (const p of model.inputs.past)
    feeds[p.name] =
      p.type === "float16"
        ? new Tensor("float16", new Uint16Array(0), [B, p.dims[0], 0, p.dims[1]])
        : new Tensor("float32", new Float32Array(0), [B, p.dims[0], 0, p.dims[1]]);
  return feeds;
}

/** Mean NLL (nats) over each sequence's scored tokens, from their log-probabilities in feed order. */
function batchLosses(sequences: Sequence[], logprobs: Float32Array): number[] {
  let n = 0;
  return sequences.map((q) => {
    let sum = 0;
    for (const [start, end] of q.spans) for (let p = start; p < end; p++) sum -= logprobs[n++]!;
    return sum / q.tokens;
  });
}

/** Sequences through a session, right-padded to `length`: each one's loss (mean NLL of its scored tokens). */
export async function runBatch(
  session: LevelSession,
  model: ScoringModel,
  sequences: Sequence[],
  length: number,
  padId: number,
): Promise<number[]> {
  const result = await session.run(batchFeeds(sequences, length, model, padId)).catch((err: Error) => {
    // A model that does not fit the scorer's inputs, or a batch the device cannot hold.
    throw new UserError(
      `${model.dir}: onnxruntime failed on a batch of ${sequences.length} rows x ${length} tokens (${err.message.split("\n")[0]}); check the model folder, or lower score.batch_tokens`,
    );
  });
  return batchLosses(sequences, (result[LOGPROBS_OUTPUT] as ort.Tensor).data as Float32Array);
}

export interface LevelLoop {
  model: ScoringModel;
  padId: number;
  encoded: Encoded[];
  plan: ScorePlan;
  passes: Pass[];
  /** The rows pass `p` runs, decided when it starts from the losses so far (src/score/refine.ts). */
  layoutFor: (p: number, losses: Float64Array) => PassLayout;
  /** Losses per row: one column per level, then (IFD) one for the response alone. */
  valuesPerRow: number;
  schedule: MaskSchedule;
  sessions: SessionFactory;
  checkpoint: Checkpoint;
  checkpointSeconds: number;
  meter: ProgressMeter;
  /** Aborted: save progress after the batch running, then stop (Interrupted). */
  signal?: AbortSignal;
}

/** The column of `losses` a pass fills: its level's, or the response-alone one after the levels. */
export const lossColumn = (pass: Pass, levels: number) => (pass.alone ? levels : pass.level);

/**
 * Runs passes `from.pass`.. (from batch `from.nextBatch` of the first) into `losses` (row-major, `valuesPerRow`
 * per row; NaN where not computed). A pass on the weights of the one before reuses its session.
 */
export async function scoreLevels(loop: LevelLoop, from: Progress, losses: Float64Array): Promise<LevelSeconds[]> {
  const { model, padId, encoded, plan, passes, schedule, sessions, checkpoint, meter, valuesPerRow } = loop;
  const levels = Math.max(...passes.map((p) => p.level)) + 1;
  const seconds: LevelSeconds[] = [];
  let lastSave = performance.now();
  let session: LevelSession | undefined;
  let sessionLevel = -1;
  try {
    for (let p = from.pass; p < passes.length; p++) {
      const pass = passes[p]!;
      const column = lossColumn(pass, levels);
      const layout = loop.layoutFor(p, losses);
      const t0 = performance.now();
      let t1 = t0;
      if (pass.level !== sessionLevel && layout.rows > 0) {
        await schedule.applyLevel(pass.level);
        t1 = performance.now();
        if (session) await session.weightsChanged();
        else session = await sessions.open(model);
        sessionLevel = pass.level;
      }
      const t2 = performance.now();
      meter.passStarted(p, (t2 - t0) / 1000, layout);
      for (let b = p === from.pass ? from.nextBatch : 0; b < plan.batches.length; b++) {
        const members = layout.members[b]!;
        if (members.length) {
          const values = await runBatch(
            session!,
            model,
            members.map((m) => (pass.alone ? encoded[m]!.alone! : encoded[m]!)),
            layout.lengths[b]!,
            padId,
          );
          members.forEach((m, j) => (losses[m * valuesPerRow + column] = values[j]!));
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
