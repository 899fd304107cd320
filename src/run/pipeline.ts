// The stages chained: score -> select -> write -> report. Each can also run alone (CLI verbs, API).
// Before any long work, every output location is checked: it is not an input of the run (by real path), it
// can be written, and the output folder holds nothing dlc-prune did not write.
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { performance } from "node:perf_hooks";
import { parseConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { inspectData, type DataInspection } from "../data/inspect.js";
import { DataSource } from "../data/source.js";
import { buildReport, writeReport, type Report, type ReportSource } from "../report/report.js";
import { score, type ScoreOptions, type ScoreResult } from "../score/score.js";
import { readScoresFile, type ScoresFile, type ScoresMeta } from "../scores/file.js";
import { expandShardPaths, mergeShards } from "../scores/merge.js";
import { isScoresArtifact } from "../scores/names.js";
import { checkRefinedFor } from "../select/boundaries.js";
import { selectRows, selectionsOf, type Selection } from "../select/select.js";
import { UserError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { RunInputs, isInside, realPathOf, type RunInput } from "../util/paths.js";
import {
  KEPT_FOLDER,
  MANIFEST_FILE,
  REPORT_FILES,
  UNSCORED_FILE,
  describeOutput,
  keepFile,
  readManifest,
  rebaseManifest,
  type Manifest,
} from "../write/layout.js";
import { checkWritable } from "../write/parquet.js";
import { OutputFolder } from "../write/publish.js";
import { outputScoreColumns, writeOutputs } from "../write/write.js";
import { ensureDemoModel } from "./demo-model.js";
import { checkBeforeScoring } from "./preflight.js";
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
  /** One per selection (select.strategies), in the config's order. */
  selections: Selection[];
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
  const [scoresDir, outDir] = [await realPathOf(dirname(config.score.out)), await realPathOf(dir)];
  // A selection's folder holds its kept rows alone (a data_dir for load_dataset) and goes when they go.
  const selection = isInside(scoresDir, outDir) ? relative(outDir, scoresDir).split(sep)[0]! : "";
  if (KEPT_FOLDER.test(selection))
    throw new UserError(
      `score.out ${config.score.out}: inside ${join(dir, selection)}, a selection folder of select.out_dir, which holds only the kept rows of that selection and is replaced or removed with them; set score.out outside the selection folders (e.g. ${join(dir, basename(config.score.out))})`,
    );
  const scoresHere = scoresDir === outDir;
  return OutputFolder.claim(dir, scoresHere ? isScoresArtifact(config.score.out) : undefined);
}

const selectOutputNames = (config: Config) => [
  ...selectionsOf(config.select).flatMap((c) => config.select.ratios.map((r) => keepFile(c.name, r))),
  UNSCORED_FILE,
  MANIFEST_FILE,
  ...REPORT_FILES,
];

/** Every selection of the run, applied to the scores. */
const selectAll = (config: Config, scores: ScoresFile, inspection: DataInspection) =>
  selectionsOf(config.select).map((choice) => selectRows(scores, config.select, inspection.stratify, choice));

/** Loads the scores and checks they belong to the data. */
async function scoresForData(config: Config, source: DataSource): Promise<ScoresFile> {
  const path = config.score.out;
  const scores = await readScoresFile(path);
  const { meta } = scores;
  if (meta.shard)
    throw new UserError(
      `${path}: shard ${meta.shard.index}/${meta.shard.count} of a scoring run; merge the shards first (dlc-prune merge)`,
    );
  const sha = await source.sha256();
  if (meta.data.sha256 !== sha)
    throw new UserError(
      `${path}: scores of another data file (${meta.data.path}, ${meta.data.rows} rows, sha256 ${meta.data.sha256.slice(0, 12)}), not of ${source.path} (sha256 ${sha.slice(0, 12)})`,
    );
  checkRefinedFor(meta.refine?.cuts, config.select, path);
  return scores;
}

/** The data's one light pass, checked for what writing needs: done before scoring, where it saves most. */
async function inspectForOutput(config: Config, source: DataSource): Promise<DataInspection> {
  const inspection = await inspectData(source, config.select.stratify);
  checkWritable(inspection.columns, source.path, outputScoreColumns(config.select));
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
 * select + write: <selection>-<ratio>/train.parquet, unscored.jsonl and manifest.json in select.out_dir (with the report
 * when `withReport`), published together.
 */
export async function selectAndWrite(
  config: Config,
  opts: RunOptions & { withReport?: boolean } = {},
  known: Known = {},
): Promise<SelectResult> {
  const log = opts.log ?? defaultLog;
  const source = known.source ?? new DataSource(config.data);
  const dir = config.select.out_dir;
  const folder =
    known.folder ?? (await claimOutputFolder(dir, selectOutputNames(config), config, await RunInputs.of(selectInputs(config, opts))));
  if (!known.folder) await folder.lock(log);
  try {
    const t0 = performance.now();
    const timings = { ...known.timings };
    const scores = await scoresForData(config, source);
    const inspection = known.inspection ?? (await inspectForOutput(config, source));
    if (inspection.rows !== scores.cols.dlc.length)
      throw new UserError(`${config.score.out}: has ${scores.cols.dlc.length} rows, ${source.path} has ${inspection.rows}`);
    const selections = selectAll(config, scores, inspection);
    const written = await writeOutputs({ config, source, scores, selections, inspection, folder, signal: opts.signal });
    timings.select_write = since(t0);
    const stored = rebaseManifest(written.body, ".", dir);
    let report: Report | undefined;
    if (opts.withReport) {
      const t1 = performance.now();
      report = await buildReport([{ label: ".", body: stored, scores, selections, inspection }], source);
      await writeReport(folder, report, written.files);
      timings.report = since(t1);
    }
    const manifest = await folder.publish(
      written.files,
      { ...stored, invocation: { command: opts.command ?? null, threads: known.threads ?? null }, timings },
      { log },
    );
    return { manifest, selections, scores, inspection, report };
  } catch (err) {
    await folder.discard();
    throw err;
  } finally {
    if (!known.folder) await folder.release();
  }
}

/** A finished select's folder, read back: its manifest, config, data and scores (checked unchanged), and its selections recomputed (they are deterministic). */
interface FinishedRun {
  dir: string;
  manifest: Manifest;
  config: Config;
  source: DataSource;
  scores: ScoresFile;
  inspection: DataInspection;
  selections: Selection[];
}

/**
 * A finished select's folder. `reportAgain`: `dlc-prune report` is rewriting its report, which it may also do
 * where an earlier `report` stopped while publishing (every other file of the folder is then as it was).
 */
async function readFinishedRun(dir: string, reportAgain = false): Promise<Omit<FinishedRun, "scores" | "inspection" | "selections">> {
  const manifest = await readManifest(dir);
  const path = join(dir, MANIFEST_FILE);
  if (!manifest) throw new UserError(`${dir}: no ${MANIFEST_FILE}; a folder written by dlc-prune select or run is needed`);
  const reportOnly = manifest.replacing?.every((f) => REPORT_FILES.includes(f)) ?? false;
  if (manifest.state !== "complete" && !(reportAgain && reportOnly))
    throw new UserError(
      reportOnly
        ? `${path}: its report was being written when dlc-prune report stopped; rerun dlc-prune report --out-dir ${dir}`
        : `${path}: its outputs were being published when the run stopped; rerun select or run`,
    );
  // The manifest's paths are relative to its folder; the stages read them relative to the working directory.
  const config = parseConfig(rebaseManifest(manifest, dir, ".").config as unknown as Record<string, unknown>, path);
  return { dir, manifest, config, source: new DataSource(config.data) };
}

async function selectAgain(run: Omit<FinishedRun, "scores" | "inspection" | "selections">): Promise<FinishedRun> {
  const { config, source, manifest, dir } = run;
  const scores = await scoresForData(config, source);
  if (scores.sha256 !== manifest.scores.sha256)
    throw new UserError(`${config.score.out}: changed since ${join(dir, MANIFEST_FILE)} was written; rerun select`);
  const inspection = await inspectData(source, config.select.stratify);
  return { ...run, scores, inspection, selections: selectAll(config, scores, inspection) };
}

/** The report's view of a finished run, its paths relative to the report's folder `to`. */
function reportSourceOf(run: FinishedRun, label: string, to: string): ReportSource {
  const { state: _state, files: _files, replacing: _replacing, invocation: _invocation, timings: _timings, ...body } = run.manifest;
  return { label, body: rebaseManifest(body, run.dir, to), scores: run.scores, selections: run.selections, inspection: run.inspection };
}

/** The report of a finished select, rewritten in its folder. */
export async function report(outDir: string, opts: RunOptions = {}): Promise<Report> {
  const found = await readFinishedRun(outDir, true);
  const folder = await claimOutputFolder(outDir, REPORT_FILES, found.config, await RunInputs.of(selectInputs(found.config, opts)));
  await folder.lock(opts.log ?? defaultLog);
  try {
    const t0 = performance.now();
    const finished = await selectAgain(found);
    const result = await buildReport([reportSourceOf(finished, ".", outDir)], finished.source);
    const written = new Map<string, string>();
    await writeReport(folder, result, written);
    const { state: _state, files: _files, replacing: _replacing, ...body } = finished.manifest;
    await folder.publish(
      written,
      { ...body, timings: { ...body.timings, report: since(t0) } },
      { keep: (name) => !REPORT_FILES.includes(name), log: opts.log ?? defaultLog },
    );
    return result;
  } catch (err) {
    await folder.discard();
    throw err;
  } finally {
    await folder.release();
  }
}

/**
 * One report across the output folders of earlier runs over the same data (other ratios, seeds, models or
 * scorers), written to `outDir` with a manifest naming the folders compared. Folders whose data differs are refused.
 */
export async function compare(dirs: string[], outDir: string, opts: RunOptions = {}): Promise<Report> {
  const log = opts.log ?? defaultLog;
  const twice = dirs.find((d, i) => dirs.findIndex((e) => resolve(e) === resolve(d)) !== i);
  if (twice) throw new UserError(`compare: ${twice} is listed twice`);
  const found = await Promise.all(dirs.map((d) => readFinishedRun(d)));
  const first = found[0]!;
  for (const f of found.slice(1)) {
    const [a, b] = [first.manifest.run.data, f.manifest.run.data];
    if (a.sha256 !== b.sha256)
      throw new UserError(
        `${f.dir}: its run read other data (${f.config.data.path}, sha256 ${b.sha256.slice(0, 12)}) than ${first.dir} (${first.config.data.path}, sha256 ${a.sha256.slice(0, 12)}); compare needs folders over the same data`,
      );
  }
  const inputs = await RunInputs.of(
    found.flatMap((f) => [{ path: f.dir, role: "folder compared", folder: true }, ...selectInputs(f.config, {})]),
  );
  await inputs.check(outDir, "--out");
  for (const name of [...REPORT_FILES, MANIFEST_FILE]) await inputs.check(join(outDir, name), "--out");
  const folder = await OutputFolder.claim(outDir);
  await folder.lock(log);
  try {
    const t0 = performance.now();
    const finished = [];
    for (const f of found) finished.push(await selectAgain(f));
    const result = await buildReport(
      finished.map((f) => reportSourceOf(f, f.dir, outDir)),
      first.source,
    );
    const written = new Map<string, string>();
    await writeReport(folder, result, written);
    const compared = await Promise.all(
      found.map(async (f) => ({
        dir: relative(resolve(outDir), resolve(f.dir)),
        manifest_sha256: await sha256File(join(f.dir, MANIFEST_FILE)),
      })),
    );
    await folder.publish(
      written,
      {
        tool: TOOL_NAME,
        version: TOOL_VERSION,
        kind: "compare" as const,
        invocation: { command: opts.command ?? null },
        compared,
        timings: { report: since(t0) },
      },
      { log },
    );
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
  checkBeforeScoring(config);
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
        log(
          `scored shard ${scored.shard.index}/${scored.shard.count} to ${scored.out}; once every shard is done, merge and select (run with score.merge, or dlc-prune merge then select)`,
        );
        return { kind: "shard", score: scored };
      }
    }
    timings[shards.length ? "merge" : "score"] = since(t1);
    const threads = "threads" in scored ? scored.threads : undefined;
    const { manifest, report: result } = await selectAndWrite(
      config,
      { ...opts, withReport: true },
      { source, inspection, folder, timings, threads },
    );
    for (const o of manifest.outputs) log(describeOutput(config.select.out_dir, o, manifest.unscored.policy));
    log(
      `wrote ${manifest.files.map((f) => f.file).join(", ")} and ${MANIFEST_FILE} to ${config.select.out_dir} (${Object.entries(
        manifest.timings,
      )
        .map(([stage, s]) => `${stage} ${s}s`)
        .join(", ")})`,
    );
    return { kind: "selected", score: scored, manifest, report: result! };
  } finally {
    await folder.discard();
    await folder.release();
  }
}
