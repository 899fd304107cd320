// The level loop: for each masking level, zero more weights, open a session on them, and run every batch of
// the plan, saving progress for resume as it goes. Batches are right-padded; the scoring graph returns each
// target token's log-probability, and a row's loss at a level is the mean NLL of its response tokens.
import { performance } from "node:perf_hooks";
import type * as ort from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import { LOGPROBS_OUTPUT, TARGETS_INPUT, type ScoringModel } from "../model/scoring-graph.js";
import type { Encoded } from "../text/encode.js";
import { UserError } from "../util/errors.js";
import type { Checkpoint, Progress } from "./checkpoint.js";
import type { MaskSchedule } from "./masking.js";
import type { Batch, ScorePlan } from "./plan.js";
import type { SessionFactory } from "./session.js";

export interface ScoreProgress {
  phase: "encode" | "score";
  level: number;
  levels: number;
  rowsDone: number;
  rowsTotal: number;
  /** Non-padding tokens run through the model, over all levels (including before a resume). */
  tokensDone: number;
  tokensTotal: number;
  /** Of tokensDone, those of this process: the rate. */
  tokensThisProcess: number;
  /** Seconds this process has spent in the phase. */
  seconds: number;
}

/** Wall time of one level: zeroing weights, creating the session, the pass over the batches. */
export interface LevelSeconds {
  mask: number;
  session: number;
  pass: number;
}

/** Counts rows and tokens done across levels (a resumed run starts part-way) and reports them. */
export class ProgressMeter {
  private readonly started = performance.now();
  private tokensDone: number;
  private readonly tokensBefore: number;
  private rowsDone: number;

  constructor(
    private readonly plan: ScorePlan,
    private readonly levels: number,
    from: Progress,
    private readonly report: (p: ScoreProgress) => void = () => {},
  ) {
    this.tokensDone = from.level * plan.passTokens + plan.batchTokens.slice(0, from.nextBatch).reduce((a, b) => a + b, 0);
    this.tokensBefore = this.tokensDone;
    this.rowsDone = plan.batches.slice(0, from.nextBatch).reduce((a, b) => a + b.members.length, 0);
  }

  batchDone(level: number, b: number): void {
    this.tokensDone += this.plan.batchTokens[b]!;
    this.rowsDone += this.plan.batches[b]!.members.length;
    this.report({
      phase: "score",
      level,
      levels: this.levels,
      rowsDone: this.rowsDone,
      rowsTotal: this.plan.passRows,
      tokensDone: this.tokensDone,
      tokensTotal: this.plan.passTokens * this.levels,
      tokensThisProcess: this.tokensDone - this.tokensBefore,
      seconds: (performance.now() - this.started) / 1000,
    });
  }

  levelDone(): void {
    this.rowsDone = 0;
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
    try {
      for (let b = level === from.level ? from.nextBatch : 0; b < plan.batches.length; b++) {
        const batch = plan.batches[b]!;
        const result = await session.run(batchFeeds(batch, encoded, model, padId)).catch((err: Error) => {
          // A model that does not fit the scorer's inputs, or a batch the device cannot hold.
          throw new UserError(`${model.dir}: onnxruntime failed on a batch of ${batch.members.length} rows x ${batch.length} tokens (${err.message.split("\n")[0]}); check the model folder, or lower score.batch_tokens`);
        });
        const values = batchLosses(batch, encoded, (result[LOGPROBS_OUTPUT] as ort.Tensor).data as Float32Array);
        batch.members.forEach((m, j) => (losses[m * K + level] = values[j]!));
        meter.batchDone(level, b);
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
