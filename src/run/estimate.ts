// `dlc-prune estimate` (and `run --dry-run`): what a run would cost on this machine, before paying for it:
// the preflight and the data pass run would do, then the score stage's measured cost (src/score/estimate.ts),
// scaled to all rows when a sample was read. Nothing is written.
import { performance } from "node:perf_hooks";
import type { SelectionsConfig } from "../config/schema.js";
import { measureScoring } from "../score/estimate.js";
import { CALIBRATION_MIN } from "../score/refine.js";
import { sessionsOf, type ScoringConfig } from "../score/setup.js";
import { DataSource } from "../data/source.js";
import type { Device } from "../score/session.js";
import { createRng, permutation } from "../util/rng.js";
import { modelToScore } from "./model.js";
import { checkBeforeScoring } from "./preflight.js";
import { inspectForOutput } from "./select.js";

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
    /** Loading the model (on the CPU with its one session). */
    load: number;
    tokenize: number;
    inspect_and_write: number;
    /** Masking one more level (on CUDA with its session). */
    per_level_setup: number;
    per_pass: number;
    ifd_pass: number;
    total: number;
    /**
     * What the run may take: the passes priced at the calibration's fastest and slowest batches relative to
     * the fit (per_pass_spread) and, with score.refine: boundary, the masked levels at least on the
     * calibration rows (refine_share of the rows) and at most on every row.
     */
    total_range: [number, number];
    per_pass_spread: [number, number];
  };
  /** Peak resident memory while calibrating (the model, a session, a batch), MiB. */
  peak_rss_mib: number;
  /** score.refine: boundary: the masked levels run on rows known only once level 0 has run; priced in full (an upper bound). */
  refine: boolean;
  /** score.refine: boundary: the share of rows that run every level at least (the calibration sample); 1 without. */
  refine_share: number;
}

async function countRows(config: EstimateConfig): Promise<number> {
  let n = 0;
  for await (const _row of new DataSource(config.data).rows()) n++;
  return n;
}

/** The rows an estimate reads: all, the first `limit`, or a seeded sample of `limit` (then `total` is counted too). */
async function rowsToRead(config: EstimateConfig, opts: EstimateOptions): Promise<{ total?: number; only?: (row: number) => boolean }> {
  if (opts.limit === undefined) return {};
  const limit = opts.limit;
  const total = await countRows(config);
  if (!opts.sample) return { total, only: (row) => row < limit };
  const chosen = new Set(Array.from(permutation(createRng(config.score.seed), total)).slice(0, limit));
  return { total, only: (row) => chosen.has(row) };
}

/**
 * What estimate reads of a config: the scoring's slice, and of select what decides the kept files' columns
 * and the preflight (src/run/preflight), never the ratios or the draws.
 */
export type EstimateConfig = ScoringConfig & { select: SelectionsConfig };

export async function estimate(config: EstimateConfig, opts: EstimateOptions = {}): Promise<Estimate> {
  const log = opts.log ?? (() => {});
  checkBeforeScoring(config);
  const s = config.score;
  const { total, only } = await rowsToRead(config, opts);
  const source = new DataSource(config.data, only);
  const t0 = performance.now();
  // run's first pass, with its checks: what run would refuse, estimate refuses too.
  await inspectForOutput(config, source);
  const inspectSeconds = (performance.now() - t0) / 1000;
  const model = await modelToScore(config, log);
  const cost = await measureScoring({ ...config, model: { ...config.model, path: model.path } }, source, sessionsOf(s, log), log);
  // A sample stands for all rows: its per-row costs scale by total / read.
  const scale = opts.sample && total !== undefined ? total / Math.max(cost.rows, 1) : 1;
  const c = cost.seconds;
  const seconds = {
    load: c.load,
    tokenize: c.tokenize * scale,
    // run reads the data to inspect it and again to write the outputs; the report adds about as much.
    inspect_and_write: 3 * inspectSeconds * scale,
    per_level_setup: c.perLevelSetup,
    per_pass: c.perPass * scale,
    ifd_pass: c.ifdPass * scale,
    total: 0,
    total_range: [0, 0] as [number, number],
    per_pass_spread: cost.spread,
  };
  const fixed = seconds.load + seconds.tokenize + seconds.inspect_and_write + s.levels * seconds.per_level_setup;
  // The masked levels run on the calibration sample at least (score.refine_sample, at least CALIBRATION_MIN rows).
  const refineShare =
    s.refine === "boundary" ? Math.min(1, Math.max(s.refine_sample, CALIBRATION_MIN / Math.max(cost.rows * scale, 1))) : 1;
  const passes = (share: number, factor: number) => factor * (seconds.per_pass * (1 + (s.levels - 1) * share) + seconds.ifd_pass);
  seconds.total = fixed + passes(1, 1);
  seconds.total_range = [fixed + passes(refineShare, cost.spread[0]), fixed + passes(1, cost.spread[1])];
  return {
    rows: { total: total ?? cost.rows, read: cost.rows, sampled: !!opts.sample && total !== undefined },
    by_status: Object.fromEntries(Object.entries(cost.byStatus).map(([k, v]) => [k, Math.round(v * scale)])),
    levels: s.levels,
    batches: Math.round(cost.batches * scale),
    tokens_per_pass: Math.round(cost.passTokens * scale),
    padding: cost.padding,
    device: cost.device,
    seconds,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    refine: s.refine === "boundary",
    refine_share: refineShare,
  };
}
