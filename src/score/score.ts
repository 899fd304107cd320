// The score stage: rows -> encoded -> length-packed batches -> per-level response losses under progressively
// masked weights -> DLC -> the Arrow scores file. Resumable, deterministic, every row accounted for.
import { basename, dirname } from "node:path";
import { performance } from "node:perf_hooks";
import type { ScoreConfig } from "../config/schema.js";
import { DataSource } from "../data/source.js";
import type { Cut } from "../contract/cuts.js";
import { existingScoresFile, writeScoresFile, type ScoreColumns, type ScoresFile } from "../contract/file.js";
import { describeFlags, flagCounts, outlierFlags, withOutlierK } from "../contract/flags.js";
import { lockPath, shardPath, type Shard } from "../contract/names.js";
import { fingerprintOf, type CheckpointSource, type RunRecord } from "../contract/record.js";
import { describeStatuses, scoredRows } from "../contract/status.js";
import { encodedSha256, type Encoded } from "../text/encode.js";
import { TRANSFORMERS_VERSION } from "../text/tokenizer.js";
import { Interrupted, UserError } from "../util/errors.js";
import { ensureWritableDir, removeStaleTemps } from "../util/fs.js";
import { Lock } from "../util/lock.js";
import { RunInputs } from "../util/paths.js";
import { seedFor } from "../util/rng.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { Checkpoint, workDirOf } from "./checkpoint.js";
import { scoreColumns } from "./columns.js";
import { ProgressMeter, scoreLevels, type LevelSeconds, type ScoreProgress } from "./levels.js";
import { maskedCounts } from "./masking.js";
import { describePass, layoutOf, passesOf, type Pass, type PassLayout, type ScorePlan } from "./plan.js";
import { prepare, type Prepared } from "./prepare.js";
import { Refiner } from "./refine.js";
import { ONNXRUNTIME_VERSION, type Device, type SessionFactory } from "./session.js";
import { describePlan, inputLength, maskScheduleOf, planOf, type ScoringConfig } from "./setup.js";

export type { ScoreProgress } from "./levels.js";

export interface ScoreOptions {
  /** Discard saved progress of an earlier run. */
  restart?: boolean;
  /** The YAML recipe the config came from: an input like the data, never written to. */
  configFile?: string;
  /** The part of the rows this process scores; null: all. Decided by the executor (src/run/shard): the API's
   * score() takes score.shard / score.shards or a job array's environment when this is left out. */
  shard?: Shard | null;
  /** The data, when a caller already reads it (its format and sha256 are then found once). */
  source?: DataSource;
  /** Aborted (Ctrl-C): progress is saved and the stage stops with Interrupted; the same call resumes. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  onProgress?: (p: ScoreProgress) => void;
}

/** What the executor (src/run/) hands the stage besides the config. */
export interface ScoringInputs {
  /** Where the selection needs DLC's order exact (src/contract/cuts): what score.refine boundary refines for. */
  cuts: Cut[];
  /** Sessions on the device and threads the executor chose; the device is settled once the model is loaded. */
  sessions: SessionFactory;
  /** The Hugging Face checkpoint model.path named, which the executor converted into the folder model.path now names. */
  checkpoint?: CheckpointSource;
}

export interface ScoreResult {
  out: string;
  /** The shard this process scored (null: all rows). */
  shard: Shard | null;
  dataSha256: string;
  rows: number;
  scored: number;
  resumed: boolean;
  /** The scores file was already up to date (same fingerprint) and was kept. */
  reused: boolean;
  device: Device;
  /** onnxruntime's intra-op threads. */
  threads: number;
  /** Non-padding input tokens of one pass over all rows; padded slots of one pass. */
  tokens: number;
  /** Non-padding input tokens run through the model over all passes (0 when the scores were reused). */
  tokensProcessed: number;
  paddingRatio: number;
  /** Wall time: loading the model and data, then per level masking, session creation and the pass over the batches. */
  seconds: { prepare: number; levels: LevelSeconds[]; total: number };
}

/** What the passes and the scores file depend on, fixed before the first pass. */
interface Scoring {
  s: ScoreConfig;
  prepared: Prepared;
  plan: ScorePlan;
  record: RunRecord;
  fingerprint: string;
  out: string;
  shard: Shard | null;
  /** sha256 of this process's tokens (encodedSha256): with the shard, whose progress a checkpoint is. */
  encoded: string;
  sessions: SessionFactory;
}

/** The passes of a run, and the rows each runs. */
interface Passes {
  list: Pass[];
  /** Losses per row: one column per level, then (IFD) one for the response alone. */
  valuesPerRow: number;
  refiner: Refiner | null;
  layoutFor: (p: number, losses: Float64Array) => PassLayout;
}

/**
 * Where this process writes its scores (the shard's file in a job array), checked before any work: not an
 * input, in a folder that can be written, and not a file of someone else's.
 */
async function scoresDestination(
  config: ScoringConfig,
  shard: Shard | null,
  configFile: string | undefined,
  checkpoint: CheckpointSource | undefined,
): Promise<{ out: string; existing?: { scores?: ScoresFile; otherVersion?: string } }> {
  const out = shard ? shardPath(config.score.out, shard) : config.score.out;
  const inputs = await RunInputs.of([
    { path: config.data.path, role: "data file" },
    { path: config.model.path!, role: "model folder", folder: true },
    ...(checkpoint ? [{ path: checkpoint.path, role: "checkpoint folder (model.path)", folder: true }] : []),
    ...(configFile ? [{ path: configFile, role: "config file" }] : []),
  ]);
  await inputs.check(out, "score.out");
  await inputs.check(workDirOf(out), "score.out");
  await ensureWritableDir(dirname(out), "score.out", out);
  return { out, existing: await existingScoresFile(out, "score.out") };
}

/** The model and the encoded rows, with progress from the first second: what is loading, then the tokenizer's rows/s at most once a second. */
async function loadAndEncode(
  config: ScoringConfig,
  modelPath: string,
  source: DataSource,
  shard: Shard | null,
  opts: ScoreOptions,
  log: (line: string) => void,
): Promise<Prepared> {
  log(`loading the model ${modelPath} and tokenizing ${shard ? `shard ${shard.index}/${shard.count}'s rows of ` : ""}${source.path}`);
  let first: number | undefined;
  let shown = -Infinity;
  return prepare(
    config,
    modelPath,
    source,
    (row) => {
      if (opts.signal?.aborted) throw new Interrupted();
      const now = performance.now();
      first ??= now;
      if (now - shown < 1000) return;
      shown = now;
      opts.onProgress?.({ phase: "encode", rowsDone: row, rate: row / Math.max((now - first) / 1000, 1e-9) });
    },
    log,
    shard,
  );
}

/** The run record (src/contract/record): what these scores depend on. */
function recordOf(
  config: ScoringConfig,
  { cuts, checkpoint }: ScoringInputs,
  { model, data, maxTokens }: Prepared,
  dataSha256: string,
  device: Device,
): RunRecord {
  const s = config.score;
  const sizes = model.maskable.map((w) => w.data.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  return {
    tool: TOOL_NAME,
    version: TOOL_VERSION,
    data: {
      path: config.data.path,
      sha256: dataSha256,
      rows: data.rows,
      format: data.format.format,
      fields: data.format.fields,
      on_error: config.data.on_error,
    },
    model: { path: model.dir, sha256: model.sha256, maskable_weights: total, ...(checkpoint && { checkpoint }) },
    tokens: { template: data.template, max_tokens: maxTokens, truncated: s.truncated, sha256: data.renderedSha256 },
    masking: {
      levels: s.levels,
      interval: s.interval,
      scope: s.scope,
      method: s.method,
      seed: s.seed,
      include: s.include,
      exclude: s.exclude,
      sparsities: maskedCounts(sizes, s).map((c) => c / total),
    },
    ifd: s.ifd,
    refine: s.refine === "boundary" ? { sample: s.refine_sample, confidence: s.refine_confidence, cuts } : null,
    // In the schema's order: a file's metadata is written as parsed, and a merged file equals a single run's bytes.
    outlier_k: s.outlier_k,
    batch_tokens: s.batch_tokens,
    block_rows: s.block_rows,
    device,
    environment: { node: process.version, onnxruntime: ONNXRUNTIME_VERSION, transformers: TRANSFORMERS_VERSION },
  };
}

/**
 * An up-to-date scores file is kept (its outlier flags recomputed when score.outlier_k changed), and progress
 * a run killed after writing it left beside it removed.
 */
async function keepUpToDate({ out, record, shard, encoded }: Scoring, existing: ScoresFile, log: (line: string) => void): Promise<void> {
  const { meta } = existing;
  if (meta.outlier_k === record.outlier_k) log(`${out} is up to date (same model, tokens and scoring config): kept; --restart rescores`);
  else {
    const { cols } = withOutlierK(existing, record.outlier_k);
    await writeScoresFile(out, cols, { ...meta, outlier_k: record.outlier_k });
    log(
      `${out} is up to date (same model, tokens and scoring config): kept, its outlier flags recomputed for score.outlier_k ${record.outlier_k} (was ${meta.outlier_k})${cols.outlier ? `: ${flagCounts(cols).outliers} outliers` : ""}`,
    );
  }
  if (await Checkpoint.removeDone(out, record, { shard, encoded_sha256: encoded }))
    log(`removed ${workDirOf(out)}: the progress of these scores, left by a run killed after writing them`);
}

/** The refinement of this process's rows (src/score/refine.ts), from the record's settings and seeded by score.seed. */
function refinerOf(
  refine: NonNullable<RunRecord["refine"]>,
  s: ScoreConfig,
  plan: ScorePlan,
  encoded: Encoded[],
  valuesPerRow: number,
  log: (line: string) => void,
): Refiner {
  if (!refine.cuts.length)
    log(
      "score.refine boundary: no selection ranks by DLC (random, or select.by loss0 / ifd): rows outside the calibration sample get estimated DLC from level 0",
    );
  const members = plan.batches.flatMap((b) => b.members);
  return new Refiner(members, encoded.length, {
    levels: s.levels,
    valuesPerRow,
    cuts: refine.cuts,
    confidence: refine.confidence,
    sample: refine.sample,
    seed: seedFor(s.seed, "refine"),
    tokens: (m) => encoded[m]!.tokens,
  });
}

/** The passes, and the rows pass p runs: all, the calibration sample, or the rows undecided before its level (from the losses so far). */
function passesFor({ s, plan, record, prepared }: Scoring, log: (line: string) => void): Passes {
  const encoded = prepared.data.encoded;
  const valuesPerRow = s.levels + (s.ifd ? 1 : 0);
  const list = passesOf(s.levels, s.ifd, !!record.refine);
  const refiner = record.refine ? refinerOf(record.refine, s, plan, encoded, valuesPerRow, log) : null;
  const layoutFor = (p: number, losses: Float64Array) => {
    const pass = list[p]!;
    const active = pass.rows === "all" ? null : pass.rows === "calibration" ? refiner!.calibration : refiner!.undecided(pass.level, losses);
    return layoutOf(plan, active, inputLength(encoded, pass.alone));
  };
  return { list, valuesPerRow, refiner, layoutFor };
}

/** Saved progress of this run, said when resumed; per shard: a shard's checkpoint never continues another's. */
async function openProgress(
  { out, record, shard, encoded, plan, prepared }: Scoring,
  passes: Passes,
  restart: boolean,
  log: (line: string) => void,
) {
  const shape = {
    passes: passes.list.length,
    batches: plan.batches.length,
    rows: prepared.data.encoded.length,
    valuesPerRow: passes.valuesPerRow,
  };
  const opened = await Checkpoint.open(out, record, { shard, encoded_sha256: encoded }, shape, restart, log);
  const { progress } = opened;
  if (opened.resumed)
    log(
      `resuming ${out} ${progress.pass < passes.list.length ? `at ${describePass(passes.list, progress.pass)}, batch ${progress.nextBatch + 1}/${plan.batches.length}` : "after its last pass: writing the scores"}`,
    );
  return opened;
}

/** Every pass from where saved progress left off: the losses, each pass's seconds, and the meter that counted their tokens. */
async function runPasses(job: Scoring, opts: ScoreOptions, log: (line: string) => void) {
  const { model, tokenizer, data } = job.prepared;
  const passes = passesFor(job, log);
  const { checkpoint, progress, losses, resumed } = await openProgress(job, passes, opts.restart ?? false, log);
  // With refinement the levels run twice (the calibration rows', then the others'): the unmasked weights are kept to start over.
  const schedule = maskScheduleOf(model, job.s, !!passes.refiner);
  // Known now: every pass over all rows or the calibration rows, and those a resumed run has begun or done.
  const layouts = passes.list.map((pass, p) => (pass.rows !== "undecided" || p <= progress.pass ? passes.layoutFor(p, losses) : null));
  const full = layoutOf(job.plan, null, inputLength(data.encoded, false));
  const meter = new ProgressMeter(layouts, passes.list, full, progress, opts.onProgress);
  const loop = {
    model,
    padId: tokenizer.padId,
    encoded: data.encoded,
    plan: job.plan,
    passes: passes.list,
    layoutFor: passes.layoutFor,
    valuesPerRow: passes.valuesPerRow,
    schedule,
    sessions: job.sessions,
    checkpoint,
    checkpointSeconds: job.s.checkpoint_seconds,
    meter,
    signal: opts.signal,
  };
  const levelSeconds = await scoreLevels(loop, progress, losses);
  return { passes, checkpoint, losses, resumed, meter, levelSeconds };
}

/** How far refinement went: rows with exact DLC, and the tokens run against a run without it. */
function logRefinement(
  { s, plan }: Scoring,
  cols: ScoreColumns,
  meter: ProgressMeter,
  processed: number,
  log: (line: string) => void,
): void {
  const exact = cols.dlcExact!.reduce((a, v) => a + v, 0);
  const scored = scoredRows(cols.dlc).length;
  // Without refinement: every level over all rows, and the same IFD pass (pass 1).
  const unrefined = plan.passTokens * s.levels + (s.ifd ? meter.tokensOf(1) : 0);
  log(
    `score.refine boundary: exact DLC for ${exact} of ${scored} scored rows (calibration and rows near a boundary), estimated for ${scored - exact}; ${processed} tokens run, ${(processed / unrefined).toFixed(3)} of a run without refinement`,
  );
}

/** The scores file from the passes' losses, then their saved progress removed; the tokens run over all passes. */
async function writeScores(job: Scoring, run: Awaited<ReturnType<typeof runPasses>>, log: (line: string) => void): Promise<number> {
  const { s, record } = job;
  const { passes, losses, meter } = run;
  const estimates = passes.refiner?.finalEstimates(losses) ?? null;
  const cols = scoreColumns(job.prepared.data, losses, { levels: s.levels, ifd: s.ifd }, estimates);
  if (!job.shard) cols.outlier = outlierFlags(cols, s.outlier_k);
  await writeScoresFile(job.out, cols, { ...record, fingerprint: job.fingerprint, shard: job.shard });
  await run.checkpoint.remove();
  const processed = passes.list.reduce((a, _, p) => a + meter.tokensOf(p), 0);
  log(
    `wrote ${job.out}: ${cols.status.length} rows, ${describeStatuses(cols.status)}; ${s.levels} levels (sparsity ${record.masking.sparsities.map((x) => `${(100 * x).toFixed(1)}%`).join(" -> ")})`,
  );
  // A shard has not seen the other rows' scores: the merge flags the outliers.
  log(`flagged ${describeFlags(flagCounts(cols), job.shard ? null : s.outlier_k)}`);
  if (cols.dlcExact) logRefinement(job, cols, meter, processed, log);
  return processed;
}

/**
 * Scores the rows of `config.data` (this process's shard) to score.out, resuming saved progress, or keeps a
 * scores file already up to date. `inputs`: what the executor settled (src/run/score.ts).
 */
export async function score(config: ScoringConfig, inputs: ScoringInputs, opts: ScoreOptions = {}): Promise<ScoreResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const shard = opts.shard ?? null;
  const started = performance.now();
  const modelPath = config.model.path;
  if (!modelPath) throw new UserError("missing key model.path (the model folder to score with)");
  const { out, existing } = await scoresDestination(config, shard, opts.configFile, inputs.checkpoint);
  const lock = await Lock.acquire(lockPath(out), `score.out ${out}`, log);
  try {
    const stale = await removeStaleTemps(dirname(out), (target) => target === basename(out));
    if (stale.length) log(`removed ${stale.join(", ")}: left by an interrupted run`);
    const source = opts.source ?? new DataSource(config.data);
    const prepared = await loadAndEncode(config, modelPath, source, shard, opts, log);
    const { data, maxTokens } = prepared;
    const prepareSeconds = (performance.now() - started) / 1000;
    const plan = planOf(data, config.score);
    log(
      `${data.rows} rows (${data.format.format}, template ${data.template}, max_tokens ${maxTokens}): ${describePlan(data, plan, shard)}`,
    );
    const record = recordOf(config, inputs, prepared, await source.sha256(), await inputs.sessions.resolve(prepared.model));
    const job: Scoring = {
      s: config.score,
      prepared,
      plan,
      record,
      fingerprint: fingerprintOf(record),
      out,
      shard,
      encoded: encodedSha256(data),
      sessions: inputs.sessions,
    };
    const result = {
      out,
      shard,
      rows: data.rows,
      scored: plan.passRows,
      tokens: plan.passTokens,
      paddingRatio: plan.padding,
      dataSha256: record.data.sha256,
      device: record.device,
      threads: inputs.sessions.threads,
    };
    const seconds = (levels: LevelSeconds[]) => ({ prepare: prepareSeconds, levels, total: (performance.now() - started) / 1000 });
    if (!opts.restart && existing?.scores?.meta.fingerprint === job.fingerprint) {
      await keepUpToDate(job, existing.scores, log);
      return { ...result, tokensProcessed: 0, resumed: false, reused: true, seconds: seconds([]) };
    }
    if (existing)
      log(
        `${out} holds the scores of ${existing.scores ? "another run (other data, model or scoring config)" : `dlc-prune ${existing.otherVersion}`}: they are replaced when scoring ends`,
      );
    const run = await runPasses(job, opts, log);
    const tokensProcessed = await writeScores(job, run, log);
    return { ...result, tokensProcessed, resumed: run.resumed, reused: false, seconds: seconds(run.levelSeconds) };
  } finally {
    await lock.release();
  }
}
