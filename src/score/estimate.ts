// What scoring would cost on this machine (`dlc-prune estimate`, `run --dry-run`; the executor adds the data
// passes and scales a sample): the rows are read and tokenized, the batches planned, and a calibration pass
// timed on the real model: masking one level, creating a session, and a spread of batches from the longest
// to the shortest. A batch's time is fitted as a x (row x length slots) + b x (slots x length, the attention
// term) + c, and the fit prices every batch of the plan. Nothing is written.
import { performance } from "node:perf_hooks";
import type { ScoreConfig } from "../config/schema.js";
import { statusCounts } from "../contract/status.js";
import type { DataSource } from "../data/source.js";
import { runBatch } from "./levels.js";
import { layoutOf, type Batch, type ScorePlan } from "./plan.js";
import { prepare, type Prepared } from "./prepare.js";
import type { Device, SessionFactory } from "./session.js";
import { describePlan, inputLength, maskScheduleOf, planOf, statusesOf, type ScoringConfig } from "./setup.js";

/** Calibration time budget: enough batches to fit the cost of the lengths, never a large share of a run. */
const CALIBRATION_SECONDS = 8;

/** The cost of scoring the rows `source` reads, as measured here (not scaled to other rows). */
export interface ScoringCost {
  rows: number;
  /** Rows by status, as scoring gives them (truncated, unscored and why). */
  byStatus: Record<string, number>;
  batches: number;
  /** Non-padding tokens the model reads in one pass; padded / total slots. */
  passTokens: number;
  padding: number;
  device: Device;
  /** Seconds: loading the model (and on the CPU its one session), tokenizing, per level masking (and on CUDA a session), a pass over all rows, the IFD pass. */
  seconds: { load: number; tokenize: number; perLevelSetup: number; perPass: number; ifdPass: number };
  /**
   * How far the calibration's batches ran from the fit: the lowest and highest ratio of a batch's time to its
   * fitted time. A pass may run that much faster or slower (a busy machine spreads them).
   */
  spread: [number, number];
}

/** The lowest and highest measured / fitted time over the calibration's batches (1, 1 when they fit exactly). */
function spreadOf(samples: { batch: Batch; seconds: number }[], cost: (batch: Batch) => number): [number, number] {
  const ratios = samples.map(({ batch, seconds }) => seconds / cost(batch)).filter(Number.isFinite);
  return ratios.length ? [Math.min(1, ...ratios), Math.max(1, ...ratios)] : [1, 1];
}

/** a, b, c of time = a x slots + b x slots x length + c, least squares (c only when the fit needs it). */
function fitBatchCost(samples: { batch: Batch; seconds: number }[]): (batch: Batch) => number {
  const features = (b: Batch) => {
    const slots = b.members.length * b.length;
    return [slots, slots * b.length, 1];
  };
  // Normal equations of a small least squares problem (3 x 3), solved by Gaussian elimination.
  const n = 3;
  const A = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  for (const { batch, seconds } of samples) {
    const x = features(batch);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) A[i]![j]! += x[i]! * x[j]!;
      A[i]![n]! += x[i]! * seconds;
    }
  }
  for (let i = 0; i < n; i++) A[i]![i]! += 1e-12 * (A[i]![i]! || 1); // ridge: a degenerate spread of lengths still solves
  for (let i = 0; i < n; i++) {
    const p = A[i]![i]!;
    for (let k = i + 1; k < n; k++) {
      const f = A[k]![i]! / p;
      for (let j = i; j <= n; j++) A[k]![j]! -= f * A[i]![j]!;
    }
  }
  const w = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) w[i] = (A[i]![n]! - A[i]!.slice(i + 1, n).reduce((s, a, k) => s + a * w[i + 1 + k]!, 0)) / A[i]![i]!;
  const mean = samples.reduce((s, x) => s + x.seconds / (x.batch.members.length * x.batch.length), 0) / samples.length;
  // A fit that prices some batch below zero is worse than the plain per-slot mean.
  const fitted = (b: Batch) => features(b).reduce((s, x, i) => s + x * w[i]!, 0);
  return samples.every(({ batch }) => fitted(batch) > 0) && w.every(Number.isFinite)
    ? (b) => Math.max(fitted(b), 0)
    : (b) => mean * b.members.length * b.length;
}

/** The batches to time: spread over the plan (longest first), within the time budget. */
function calibrationBatches(batches: Batch[], count: number): number[] {
  if (batches.length <= count) return batches.map((_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.round((i * (batches.length - 1)) / (count - 1)));
}

/**
 * Masking one level and opening a session (their seconds: a level's setup is the masking, and on CUDA a
 * session; on the CPU one session serves every level and counts with the loading), then timing a spread of
 * the plan's batches within the budget.
 */
async function calibrate(s: ScoreConfig, { model, tokenizer, data }: Prepared, plan: ScorePlan, sessions: SessionFactory) {
  const device = await sessions.resolve(model);
  const tm = performance.now();
  const schedule = maskScheduleOf(model, s);
  if (s.levels > 1) await schedule.applyLevel(1);
  const ts = performance.now();
  const session = await sessions.open(model);
  const [mask, open] = [(ts - tm) / 1000, (performance.now() - ts) / 1000];
  const setup = { perLevel: device === "cpu" ? mask : mask + open, once: device === "cpu" ? open : 0 };
  const samples: { batch: Batch; seconds: number }[] = [];
  try {
    // The first run of a session warms it up, as in a run: timed, but not fitted.
    const run = (batch: Batch) =>
      runBatch(
        session,
        model,
        batch.members.map((m) => data.encoded[m]!),
        batch.length,
        tokenizer.padId,
      );
    await run(plan.batches.at(-1)!);
    const spent = performance.now();
    for (const b of calibrationBatches(plan.batches, 24)) {
      if ((performance.now() - spent) / 1000 > CALIBRATION_SECONDS && samples.length >= 3) break;
      const t = performance.now();
      await run(plan.batches[b]!);
      samples.push({ batch: plan.batches[b]!, seconds: (performance.now() - t) / 1000 });
    }
  } finally {
    await session.release();
  }
  const cost = fitBatchCost(samples);
  return { device, setup, cost, spread: spreadOf(samples, cost) };
}

/** Every pass over the plan priced batch by batch: the model's inputs (alone: the responses, IFD's pass). */
function pricePass({ data }: Prepared, plan: ScorePlan, cost: (batch: Batch) => number, alone: boolean): number {
  const layout = layoutOf(plan, null, inputLength(data.encoded, alone));
  return layout.members.reduce((a, members, i) => a + (members.length ? cost({ members, length: layout.lengths[i]! }) : 0), 0);
}

/** Reads, tokenizes and plans the rows of `source`, and times scoring them on `sessions`' device. */
export async function measureScoring(
  config: ScoringConfig,
  source: DataSource,
  sessions: SessionFactory,
  log: (line: string) => void,
): Promise<ScoringCost> {
  const s = config.score;
  const prepared = await prepare(config, config.model.path!, source, () => {}, log);
  const { data } = prepared;
  const plan = planOf(data, s, true);
  log(`${data.rows} rows read: ${describePlan(data, plan, null)}; calibrating on the model...`);
  const { device, setup, cost, spread } = await calibrate(s, prepared, plan, sessions);
  return {
    rows: data.rows,
    byStatus: statusCounts(statusesOf(data)),
    batches: plan.batches.length,
    passTokens: plan.passTokens,
    padding: plan.padding,
    device,
    seconds: {
      load: prepared.seconds.load + setup.once,
      tokenize: prepared.seconds.encode,
      perLevelSetup: setup.perLevel,
      perPass: pricePass(prepared, plan, cost, false),
      ifdPass: s.ifd ? pricePass(prepared, plan, cost, true) : 0,
    },
    spread,
  };
}
