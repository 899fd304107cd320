// The score stage: rows -> encoded -> length-packed batches -> per-level response losses under progressively
// masked weights -> DLC -> the Arrow scores file. Resumable, deterministic, every row accounted for.
import { basename, dirname } from "node:path";
import { performance } from "node:perf_hooks";
import type { Config } from "../config/schema.js";
import { DataSource } from "../data/source.js";
import { existingScoresFile, writeScoresFile, type ScoresFile } from "../contract/file.js";
import { lockPath, shardPath, type Shard } from "../contract/names.js";
import { fingerprintOf, type RunRecord } from "../contract/record.js";
import { describeStatuses, scoredRows } from "../contract/status.js";
import { encodedSha256, type Encoded } from "../text/encode.js";
import { TRANSFORMERS_VERSION } from "../text/tokenizer.js";
import { Interrupted, UserError } from "../util/errors.js";
import { ensureWritableDir, removeStaleTemps } from "../util/fs.js";
import { Lock } from "../util/lock.js";
import { RunInputs } from "../util/paths.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { Checkpoint, workDirOf } from "./checkpoint.js";
import { scoreColumns } from "./columns.js";
import { ProgressMeter, scoreLevels, type LevelSeconds, type ScoreProgress } from "./levels.js";
import { MaskSchedule, maskedCounts } from "./masking.js";
import { describePass, layoutOf, passesOf, planScoring, type ScorePlan } from "./plan.js";
import { Refiner } from "./refine.js";
import { cutsOf } from "../select/cuts.js";
import { seedFor } from "../util/rng.js";
import { prepare, type Prepared } from "./prepare.js";
import { ONNXRUNTIME_VERSION, SessionFactory, threadCount, type Device } from "./session.js";

export type { ScoreProgress } from "./levels.js";

export interface ScoreOptions {
  /** Discard saved progress of an earlier run. */
  restart?: boolean;
  /** The YAML recipe the config came from: an input like the data, never written to. */
  configFile?: string;
  /** The part of the rows this process scores (decided by the executor: src/run/shard); null: all. */
  shard?: Shard | null;
  /** The data, when a caller already reads it (its format and sha256 are then found once). */
  source?: DataSource;
  /** Aborted (Ctrl-C): progress is saved and the stage stops with Interrupted; the same call resumes. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  onProgress?: (p: ScoreProgress) => void;
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

/**
 * Where this process writes its scores (the shard's file in a job array), checked before any work: not an
 * input, in a folder that can be written, and not a file of someone else's.
 */
async function scoresDestination(
  config: Config,
  shard: Shard | null,
  configFile: string | undefined,
): Promise<{ out: string; existing?: { scores?: ScoresFile; otherVersion?: string } }> {
  const out = shard ? shardPath(config.score.out, shard) : config.score.out;
  const inputs = await RunInputs.of([
    { path: config.data.path, role: "data file" },
    { path: config.model.path!, role: "model folder", folder: true },
    ...(configFile ? [{ path: configFile, role: "config file" }] : []),
  ]);
  await inputs.check(out, "score.out");
  await inputs.check(workDirOf(out), "score.out");
  await ensureWritableDir(dirname(out), "score.out", out);
  return { out, existing: await existingScoresFile(out, "score.out") };
}

/** The refinement of this process's rows (src/score/refine.ts), from the record's settings and seeded by score.seed. */
function refinerOf(
  refine: NonNullable<RunRecord["refine"]>,
  config: Config,
  plan: ScorePlan,
  encoded: Encoded[],
  columns: number,
  log: (line: string) => void,
): Refiner {
  if (config.select.stratify)
    throw new UserError(
      `score.refine boundary: select.stratify ${config.select.stratify} needs the boundaries of every group, which refinement does not compute yet; use score.refine none`,
    );
  if (!refine.cuts.length)
    log(
      "score.refine boundary: no selection ranks by DLC (random, or select.by loss0 / ifd): rows outside the calibration sample get estimated DLC from level 0",
    );
  const members = plan.batches.flatMap((b) => b.members);
  return new Refiner(members, encoded.length, {
    levels: config.score.levels,
    columns,
    cuts: refine.cuts,
    confidence: refine.confidence,
    sample: refine.sample,
    seed: seedFor(config.score.seed, "refine"),
    tokens: (m) => encoded[m]!.tokens,
  });
}

/** The run record (src/contract/record): what these scores depend on. */
function recordOf(config: Config, { model, data, maxTokens }: Prepared, dataSha256: string, device: Device): RunRecord {
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
    model: { path: model.dir, sha256: model.sha256, maskable_weights: total },
    tokens: { template: data.template, max_tokens: maxTokens, truncated: s.truncated, sha256: encodedSha256(data) },
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
    refine: s.refine === "boundary" ? { sample: s.refine_sample, confidence: s.refine_confidence, cuts: cutsOf(config.select) } : null,
    batch_tokens: s.batch_tokens,
    device,
    environment: { node: process.version, onnxruntime: ONNXRUNTIME_VERSION, transformers: TRANSFORMERS_VERSION },
  };
}

export async function score(config: Config, opts: ScoreOptions = {}): Promise<ScoreResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const s = config.score;
  const shard = opts.shard ?? null;
  const started = performance.now();
  if (!config.model.path) throw new UserError("missing key model.path (the model folder to score with)");
  const { out, existing } = await scoresDestination(config, shard, opts.configFile);
  const lock = await Lock.acquire(lockPath(out), `score.out ${out}`);
  try {
    const stale = await removeStaleTemps(dirname(out), (target) => target === basename(out));
    if (stale.length) log(`removed ${stale.join(", ")}: left by an interrupted run`);
    const source = opts.source ?? new DataSource(config.data);
    // Progress from the first second: what is being loaded, then the tokenizer's rows/s at most once a second.
    log(`loading the model ${config.model.path} and tokenizing ${source.path}`);
    let first: number | undefined;
    let shown = -Infinity;
    const prepared = await prepare(config, config.model.path, source, (row) => {
      if (opts.signal?.aborted) throw new Interrupted();
      const now = performance.now();
      first ??= now;
      if (now - shown < 1000) return;
      shown = now;
      opts.onProgress?.({ phase: "encode", rowsDone: row, rate: row / Math.max((now - first) / 1000, 1e-9) });
    });
    const { model, tokenizer, data } = prepared;
    const prepareSeconds = (performance.now() - started) / 1000;
    // One plan for all rows; a shard scores its share of the batches.
    const plan = planScoring(
      data.encoded.map((e) => e.ids.length - 1),
      s.batch_tokens,
      shard,
    );
    log(
      `${data.rows} rows (${data.format.format}, template ${data.template}, max_tokens ${prepared.maxTokens}): ${describeStatuses([...data.encoded.map((e) => e.status), ...data.unscored.map((u) => u.status)])}; ` +
        `${shard ? `shard ${shard.index}/${shard.count}: ${plan.passRows} rows, ` : ""}${plan.batches.length} batches, padding ${(100 * plan.padding).toFixed(1)}%`,
    );

    const threads = threadCount(s.threads);
    const sessions = new SessionFactory(s.device, threads, log);
    const record = recordOf(config, prepared, await source.sha256(), await sessions.resolve(model));
    const fingerprint = fingerprintOf(record);
    const result = {
      out,
      shard,
      rows: data.rows,
      scored: plan.passRows,
      tokens: plan.passTokens,
      paddingRatio: plan.padding,
      dataSha256: record.data.sha256,
      device: record.device,
      threads,
    };
    if (!opts.restart && existing?.scores?.meta.fingerprint === fingerprint) {
      log(`${out} is up to date (same model, tokens and scoring config): kept; --restart rescores`);
      if (await Checkpoint.removeDone(out, record, shard))
        log(`removed ${workDirOf(out)}: the progress of these scores, left by a run killed after writing them`);
      return {
        ...result,
        tokensProcessed: 0,
        resumed: false,
        reused: true,
        seconds: { prepare: prepareSeconds, levels: [], total: (performance.now() - started) / 1000 },
      };
    }
    if (existing)
      log(
        `${out} holds the scores of ${existing.scores ? "another run (other data, model or scoring config)" : `dlc-prune ${existing.otherVersion}`}: they are replaced when scoring ends`,
      );

    const K = s.levels;
    const columns = K + (s.ifd ? 1 : 0);
    const passes = passesOf(K, s.ifd, !!record.refine);
    const refiner = record.refine ? refinerOf(record.refine, config, plan, data.encoded, columns, log) : null;
    /** The rows pass p runs: all, the calibration sample, or the rows undecided before its level (from the losses so far). */
    const layoutFor = (p: number, losses: Float64Array) => {
      const pass = passes[p]!;
      const active =
        pass.rows === "all" ? null : pass.rows === "calibration" ? refiner!.calibration : refiner!.undecided(pass.level, losses);
      return layoutOf(plan, active, (m) =>
        pass.alone ? (data.encoded[m]!.alone ? data.encoded[m]!.alone!.ids.length - 1 : null) : data.encoded[m]!.ids.length - 1,
      );
    };
    // Progress is per shard: a shard's checkpoint never continues another's.
    const shape = { passes: passes.length, batches: plan.batches.length, rows: data.encoded.length, columns };
    const { checkpoint, progress, losses, resumed } = await Checkpoint.open(out, record, shard, shape, opts.restart ?? false, log);
    if (resumed)
      log(
        `resuming ${out} ${progress.pass < passes.length ? `at ${describePass(passes, progress.pass)}, batch ${progress.nextBatch + 1}/${plan.batches.length}` : "after its last pass: writing the scores"}`,
      );
    // With refinement the levels run twice (the calibration rows', then the others'): the unmasked weights are kept to start over.
    const schedule = new MaskSchedule(model.maskable, {
      file: model.onnxPath,
      scope: s.scope,
      method: s.method,
      interval: s.interval,
      levels: K,
      seed: s.seed,
      restartable: !!refiner,
    });
    // Known now: every pass over all rows or the calibration rows, and those a resumed run has begun or done.
    const layouts = passes.map((pass, p) => (pass.rows !== "undecided" || p <= progress.pass ? layoutFor(p, losses) : null));
    const meter = new ProgressMeter(
      layouts,
      passes,
      layoutOf(plan, null, (m) => data.encoded[m]!.ids.length - 1),
      progress,
      opts.onProgress,
    );
    const loop = {
      model,
      padId: tokenizer.padId,
      encoded: data.encoded,
      plan,
      passes,
      layoutFor,
      columns,
      schedule,
      sessions,
      checkpoint,
      checkpointSeconds: s.checkpoint_seconds,
      meter,
      signal: opts.signal,
    };
    const levelSeconds = await scoreLevels(loop, progress, losses);

    const cols = scoreColumns(data, losses, { levels: K, ifd: s.ifd }, plan, shard, refiner?.finalEstimates(losses) ?? null);
    await writeScoresFile(out, cols, { ...record, fingerprint, shard });
    await checkpoint.remove();
    const processed = passes.reduce((a, _, p) => a + meter.tokensOf(p), 0);
    log(
      `wrote ${out}: ${cols.status.length} rows, ${describeStatuses(cols.status)}; ${K} levels (sparsity ${record.masking.sparsities.map((x) => `${(100 * x).toFixed(1)}%`).join(" -> ")})`,
    );
    if (cols.dlcExact) {
      const exact = cols.dlcExact.reduce((a, v) => a + v, 0);
      const scored = scoredRows(cols.dlc).length;
      // Without refinement: every level over all rows, and the same IFD pass (pass 1).
      const unrefined = plan.passTokens * K + (s.ifd ? meter.tokensOf(1) : 0);
      log(
        `score.refine boundary: exact DLC for ${exact} of ${scored} scored rows (calibration and rows near a boundary), estimated for ${scored - exact}; ${processed} tokens run, ${(processed / unrefined).toFixed(3)} of a run without refinement`,
      );
    }
    return {
      ...result,
      tokensProcessed: processed,
      resumed,
      reused: false,
      seconds: { prepare: prepareSeconds, levels: levelSeconds, total: (performance.now() - started) / 1000 },
    };
  } finally {
    await lock.release();
  }
}
