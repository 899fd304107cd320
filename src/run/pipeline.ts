// The stages chained: score -> select -> write -> report. Each can also run alone (CLI verbs, API).
// Before any long work, every output location is checked: it is not an input of the run (by real path), it
// can be written, and the output folder holds nothing dlc-prune did not write.
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { inspectData, type DataInspection } from "../data/inspect.js";
import { DataSource } from "../data/source.js";
import { buildReport, writeReport, type Report } from "../report/report.js";
import { score, type ScoreOptions, type ScoreResult } from "../score/score.js";
import { readScoresFile, type ScoresFile, type ScoresMeta } from "../scores/file.js";
import { expandShardPaths, mergeShards } from "../scores/merge.js";
import { isScoresArtifact } from "../scores/names.js";
import { selectRows, type Selection } from "../select/select.js";
import { UserError } from "../util/errors.js";
import { RunInputs, realPathOf, type RunInput } from "../util/paths.js";
import { MANIFEST_FILE, REPORT_FILES, UNSCORED_FILE, describeOutput, keepFile, readManifest, rebaseManifest, type Manifest } from "../write/layout.js";
import { checkWritable } from "../write/parquet.js";
import { OutputFolder } from "../write/publish.js";
import { writeOutputs } from "../write/write.js";
import { ensureDemoModel } from "./demo-model.js";
import { resolveShard } from "./shard.js";

/** Options of the stages run by the pipeline: those of scoring (restart, log, progress, the recipe's path), and the command line. */
export interface RunOptions extends ScoreOptions {
  /** The command line that runs the stage (the CLI's arguments), recorded in the manifest. */
  command?: string[];
}

/** Seconds since `t0` (performance.now()), for the manifest's timings. */
const since = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;

export interface SelectResult {
  manifest: Manifest;
  selection: Selection;
  scores: ScoresFile;
  inspection: DataInspection;
  /** The report, when one was written with the outputs (run). */
  report?: Report;
}

const defaultLog = (line: string) => process.stderr.write(`${line}\n`);

/** What select reads: the data, the scores and the recipe. */
function selectInputs(config: Config, opts: RunOptions): RunInput[] {
  return [
    { path: config.data.path, role: "data file" },
    { path: config.score.out, role: "scores file (score.out)" },
    ...(opts.configFile ? [{ path: opts.configFile, role: "config file" }] : []),
  ];
}

/**
 * The output folder, claimed: no output name in it is an input, it can be written, and it holds only
 * dlc-prune's files (the scores file may live there too).
 */
async function claimOutputFolder(dir: string, names: string[], config: Config, inputs: RunInputs): Promise<OutputFolder> {
  await inputs.check(dir, "select.out_dir");
  for (const name of names) await inputs.check(join(dir, name), "select.out_dir");
  const scoresHere = (await realPathOf(dirname(config.score.out))) === (await realPathOf(dir));
  return OutputFolder.claim(dir, scoresHere ? isScoresArtifact(config.score.out) : undefined);
}

const selectOutputNames = (config: Config) => [...config.select.ratios.map(keepFile), UNSCORED_FILE, MANIFEST_FILE, ...REPORT_FILES];

/** Loads the scores and checks they belong to the data. */
async function scoresForData(config: Config, source: DataSource): Promise<ScoresFile> {
  const path = config.score.out;
  const scores = await readScoresFile(path);
  const { meta } = scores;
  if (meta.shard) throw new UserError(`${path}: shard ${meta.shard.index}/${meta.shard.count} of a scoring run; merge the shards first (dlc-prune merge)`);
  const sha = await source.sha256();
  if (meta.data.sha256 !== sha)
    throw new UserError(`${path}: scores of another data file (${meta.data.path}, ${meta.data.rows} rows, sha256 ${meta.data.sha256.slice(0, 12)}), not of ${source.path} (sha256 ${sha.slice(0, 12)})`);
  return scores;
}

/** The data's one light pass, checked for what writing needs: done before scoring, where it saves most. */
async function inspectForOutput(config: Config, source: DataSource): Promise<DataInspection> {
  const inspection = await inspectData(source, config.select.stratify);
  checkWritable(inspection.columns, source.path);
  return inspection;
}

interface Known {
  source?: DataSource;
  inspection?: DataInspection;
  folder?: OutputFolder;
  /** Seconds of the stages before this one (inspect, score). */
  timings?: Record<string, number>;
  /** The onnxruntime threads, when this process scored. */
  threads?: number;
}

/**
 * select + write: keep-<ratio>.parquet, unscored.jsonl and manifest.json in select.out_dir (with the report
 * when `withReport`), published together.
 */
export async function selectAndWrite(config: Config, opts: RunOptions & { withReport?: boolean } = {}, known: Known = {}): Promise<SelectResult> {
  const log = opts.log ?? defaultLog;
  const source = known.source ?? new DataSource(config.data);
  const dir = config.select.out_dir;
  const folder = known.folder ?? (await claimOutputFolder(dir, selectOutputNames(config), config, await RunInputs.of(selectInputs(config, opts))));
  if (!known.folder) await folder.lock(log);
  try {
    const t0 = performance.now();
    const timings = { ...known.timings };
    const scores = await scoresForData(config, source);
    const inspection = known.inspection ?? (await inspectForOutput(config, source));
    if (inspection.rows !== scores.cols.dlc.length) throw new UserError(`${config.score.out}: has ${scores.cols.dlc.length} rows, ${source.path} has ${inspection.rows}`);
    const selection = selectRows(scores, config.select, inspection.stratify);
    const written = await writeOutputs({ config, source, scores, selection, inspection, folder, signal: opts.signal });
    timings.select_write = since(t0);
    const stored = rebaseManifest(written.body, ".", dir);
    let report: Report | undefined;
    if (opts.withReport) {
      const t1 = performance.now();
      report = buildReport(stored, scores, selection, inspection);
      await writeReport(folder, report, written.files);
      timings.report = since(t1);
    }
    const manifest = await folder.publish(written.files, { ...stored, invocation: { command: opts.command ?? null, threads: known.threads ?? null }, timings }, { log });
    return { manifest, selection, scores, inspection, report };
  } catch (err) {
    await folder.discard();
    throw err;
  } finally {
    if (!known.folder) await folder.release();
  }
}

/** The report of a finished select, from its manifest; the selection is recomputed (it is deterministic). */
export async function report(outDir: string, opts: RunOptions = {}): Promise<Report> {
  const manifest = await readManifest(outDir);
  const path = join(outDir, MANIFEST_FILE);
  if (!manifest) throw new UserError(`${outDir}: no ${MANIFEST_FILE}; report needs a folder written by dlc-prune select or run`);
  if (manifest.state !== "complete") throw new UserError(`${path}: its outputs were being published when the run stopped; rerun select or run`);
  // The manifest's paths are relative to its folder; the stages read them relative to the working directory.
  const config = parseConfig(rebaseManifest(manifest, outDir, ".").config as unknown as Record<string, unknown>, path);
  const folder = await claimOutputFolder(outDir, REPORT_FILES, config, await RunInputs.of(selectInputs(config, opts)));
  await folder.lock(opts.log ?? defaultLog);
  try {
    const source = new DataSource(config.data);
    const scores = await scoresForData(config, source);
    if (scores.sha256 !== manifest.scores.sha256) throw new UserError(`${config.score.out}: changed since ${path} was written; rerun select`);
    const t0 = performance.now();
    const inspection = await inspectData(source, config.select.stratify);
    const selection = selectRows(scores, config.select, inspection.stratify);
    const { state: _state, files: _files, ...body } = manifest;
    const result = buildReport(body, scores, selection, inspection);
    const written = new Map<string, string>();
    await writeReport(folder, result, written);
    await folder.publish(written, { ...body, timings: { ...body.timings, report: since(t0) } }, { keep: (name) => !REPORT_FILES.includes(name), log: opts.log ?? defaultLog });
    return result;
  } catch (err) {
    await folder.discard();
    throw err;
  } finally {
    await folder.release();
  }
}

export interface RunResult {
  kind: "selected";
  /** The scoring run, or the metadata of the merged shards. */
  score: ScoreResult | ScoresMeta;
  manifest: Manifest;
  report: Report;
}

/** A run that scored one shard (a job array task): selection waits for the merge. */
export interface ShardRunResult {
  kind: "shard";
  score: ScoreResult;
}

/**
 * The whole job: score (resuming, or reusing an up-to-date scores file) or merge the shard files of a
 * sharded scoring (`score.merge`), then select, write, report.
 */
export async function run(config: Config, opts: RunOptions = {}): Promise<RunResult | ShardRunResult> {
  const log = opts.log ?? defaultLog;
  const shards = config.score.merge.length ? await expandShardPaths(config.score.merge) : [];
  // The output folder is claimed first: a folder that cannot be used is said before the scoring stage.
  const inputs = await RunInputs.of([
    ...selectInputs(config, opts),
    ...(config.model.path ? [{ path: config.model.path, role: "model folder", folder: true }] : []),
    ...shards.map((path) => ({ path, role: "shard file (score.merge)" })),
  ]);
  const folder = await claimOutputFolder(config.select.out_dir, selectOutputNames(config), config, inputs);
  // In a job array each task scores its shard and leaves the folder to the job that merges and selects.
  const shard = shards.length ? null : opts.shard === undefined ? resolveShard(config.score.shard, config.score.shards) : opts.shard;
  if (!shard) await folder.lock(log);
  try {
    const t0 = performance.now();
    const source = new DataSource(config.data);
    const inspection = await inspectForOutput(config, source);
    const timings: Record<string, number> = { inspect: since(t0) };
    const t1 = performance.now();
    let scored: ScoreResult | ScoresMeta;
    if (shards.length) scored = await mergeShards(shards, config.score.out, "score.out");
    else {
      await ensureDemoModel(config, log);
      scored = await score(config, { ...opts, source, shard });
      if (scored.shard) {
        log(`scored shard ${scored.shard.index}/${scored.shard.count} to ${scored.out}; once every shard is done, merge and select (run with score.merge, or dlc-prune merge then select)`);
        return { kind: "shard", score: scored };
      }
    }
    timings[shards.length ? "merge" : "score"] = since(t1);
    const threads = "threads" in scored ? scored.threads : undefined;
    const { manifest, report: result } = await selectAndWrite(config, { ...opts, withReport: true }, { source, inspection, folder, timings, threads });
    for (const o of manifest.outputs) log(describeOutput(config.select.out_dir, o, manifest.unscored.policy));
    log(`wrote ${manifest.files.map((f) => f.file).join(", ")} and ${MANIFEST_FILE} to ${config.select.out_dir} (${Object.entries(manifest.timings).map(([stage, s]) => `${stage} ${s}s`).join(", ")})`);
    return { kind: "selected", score: scored, manifest, report: result! };
  } finally {
    await folder.discard();
    await folder.release();
  }
}
