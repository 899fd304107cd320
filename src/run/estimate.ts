// `dlc-prune estimate` (and `run --dry-run`): what a run would cost on this machine, before paying for it.
// It reads and tokenizes the data (or a slice), plans the batches, and times a calibration pass on the real
// model: masking one level, creating a session, and a spread of batches from the longest to the shortest.
// A batch's time is fitted as a x (row x length slots) + b x (slots x length, the attention term) + c, and
// the fit prices every batch of the plan. Nothing is written.
import { performance } from "node:perf_hooks";
import type { Config } from "../config/schema.js";
import { inspectData } from "../data/inspect.js";
import { DataSource } from "../data/source.js";
import { runBatch } from "../score/levels.js";
import { MaskSchedule } from "../score/masking.js";
import { layoutOf, planScoring, type Batch } from "../score/plan.js";
import { prepare } from "../score/prepare.js";
import { SessionFactory, threadCount, type Device } from "../score/session.js";
import { describeStatuses, statusCounts } from "../contract/status.js";
import { createRng, permutation } from "../util/rng.js";
import { checkWritable } from "../write/parquet.js";
import { outputScoreColumns } from "../write/write.js";
import { ensureDemoModel } from "./demo-model.js";
import { checkBeforeScoring } from "./preflight.js";

/** Calibration time budget: enough batches to fit the cost of the lengths, never a large share of a run. */
const CALIBRATION_SECONDS = 8;

export interface EstimateOptions {
  /** Only the first `limit` rows (a slice to try a recipe on). */
  limit?: number;
  /** With `limit`: a seeded sample of that many rows, whose costs are scaled to the whole data. */
  sample?: boolean;
  log?: (line: string) => void;
}

export interface Estimate {
  /** Rows of the data; of them, the rows read (a slice or a sample). */
  rows: { total: number; read: number; sampled: boolean };
  /** Rows read by status, as scoring would give them (truncated, unscored and why). */
  by_status: Record<string, number>;
  levels: number;
  batches: number;
  /** Non-padding tokens the model reads in one pass; padded / total slots. */
  tokens_per_pass: number;
  padding: number;
  device: Device;
  /** Expected wall seconds of a run on this machine (scaled to all rows when sampled). */
  seconds: {
    load: number;
    tokenize: number;
    inspect_and_write: number;
    per_level_setup: number;
    per_pass: number;
    ifd_pass: number;
    total: number;
  };
  /** Peak resident memory while calibrating (the model, a session, a batch), MiB. */
  peak_rss_mib: number;
  /** score.refine: boundary: the masked levels run on rows known only once level 0 has run; priced in full (an upper bound). */
  refine: boolean;
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

async function countRows(config: Config): Promise<number> {
  let n = 0;
  for await (const _row of new DataSource(config.data).rows()) n++;
  return n;
}

export async function estimate(config: Config, opts: EstimateOptions = {}): Promise<Estimate> {
  const log = opts.log ?? (() => {});
  checkBeforeScoring(config);
  const s = config.score;
  const total = opts.limit !== undefined ? await countRows(config) : undefined;
  let only: ((row: number) => boolean) | undefined;
  if (opts.limit !== undefined) {
    const limit = opts.limit;
    if (opts.sample) {
      const chosen = new Set(Array.from(permutation(createRng(s.seed), total!)).slice(0, limit));
      only = (row) => chosen.has(row);
    } else only = (row) => row < limit;
  }
  const source = new DataSource(config.data, only);
  const t0 = performance.now();
  // run's first pass, with its checks: what run would refuse, estimate refuses too.
  checkWritable((await inspectData(source, config.select.stratify)).columns, source.path, outputScoreColumns(config.select));
  const inspectSeconds = (performance.now() - t0) / 1000;
  await ensureDemoModel(config, log);
  const prepared = await prepare(config, config.model.path!, source, () => {});
  const { model, tokenizer, data } = prepared;
  const plan = planScoring(
    data.encoded.map((e) => e.ids.length - 1),
    s.batch_tokens,
    null,
  );
  log(
    `${data.rows} rows read: ${describeStatuses([...data.encoded.map((e) => e.status), ...data.unscored.map((u) => u.status)])}; ${plan.batches.length} batches, padding ${(100 * plan.padding).toFixed(1)}%; calibrating on the model...`,
  );

  const sessions = new SessionFactory(s.device, threadCount(s.threads), log);
  const device = await sessions.resolve(model);
  const tm = performance.now();
  const schedule = new MaskSchedule(model.maskable, {
    file: model.onnxPath,
    scope: s.scope,
    method: s.method,
    interval: s.interval,
    levels: s.levels,
    seed: s.seed,
  });
  if (s.levels > 1) schedule.applyLevel(1);
  const session = await sessions.create(model);
  const setup = (performance.now() - tm) / 1000;
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
  // A sample stands for all rows: its per-row costs scale by total / read.
  const scale = opts.sample && total !== undefined ? total / Math.max(data.rows, 1) : 1;
  // A pass over all rows (score.refine: boundary runs the masked levels on fewer, known only once level 0
  // has run: priced in full, an upper bound).
  const price = (alone: boolean) => {
    const layout = layoutOf(plan, null, (m) =>
      alone ? (data.encoded[m]!.alone ? data.encoded[m]!.alone!.ids.length - 1 : null) : data.encoded[m]!.ids.length - 1,
    );
    return layout.members.reduce((a, members, i) => a + (members.length ? cost({ members, length: layout.lengths[i]! }) : 0), 0) * scale;
  };
  const perPass = price(false);
  const ifdPass = s.ifd ? price(true) : 0;
  const seconds = {
    load: prepared.seconds.load,
    tokenize: prepared.seconds.encode * scale,
    // run reads the data to inspect it and again to write the outputs; the report adds about as much.
    inspect_and_write: 3 * inspectSeconds * scale,
    per_level_setup: setup,
    per_pass: perPass,
    ifd_pass: ifdPass,
    total: 0,
  };
  seconds.total = seconds.load + seconds.tokenize + seconds.inspect_and_write + s.levels * (setup + perPass) + ifdPass;
  const scaled = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round(v * scale)]));
  return {
    rows: { total: total ?? data.rows, read: data.rows, sampled: !!opts.sample && total !== undefined },
    by_status: scaled(statusCounts([...data.encoded.map((e) => e.status), ...data.unscored.map((u) => u.status)])),
    levels: s.levels,
    batches: Math.round(plan.batches.length * scale),
    tokens_per_pass: Math.round(plan.passTokens * scale),
    padding: plan.padding,
    device,
    seconds,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    refine: s.refine === "boundary",
  };
}
