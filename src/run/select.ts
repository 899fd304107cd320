// select + write as one step of the executor: the output folder claimed (no output is an input of the run,
// by real path; it can be written; it holds nothing dlc-prune did not write), the scores checked against the
// data, every selection drawn, the outputs written and published together with the manifest.
import { isCheckpointFolder } from "../model/folder.js";
import { modelCacheOf } from "./model.js";
import { basename, dirname, join, relative, sep } from "node:path";
import { performance } from "node:perf_hooks";
import type { Config, SelectionsConfig } from "../config/schema.js";
import { inspectData, type DataInspection } from "../data/inspect.js";
import { DataSource } from "../data/source.js";
import { type Report } from "../report/report.js";
import { type ScoreOptions } from "../score/score.js";
import { readScoresFile, type ScoresFile } from "../contract/file.js";
import { isScoresArtifact } from "../contract/names.js";
import { checkRefinedFor } from "../select/cuts.js";
import { flagCounts, withOutlierK } from "../contract/flags.js";
import { exclusionsOf } from "../select/exclude.js";
import { selectRows, selectionsOf, type Selection } from "../select/select.js";
import { UserError } from "../util/errors.js";
import { RunInputs, isInside, realPathOf, type RunInput } from "../util/paths.js";
import { EXCLUDED_FILE, KEPT_FOLDER, MANIFEST_FILE, REPORT_FILES, UNSCORED_FILE, keepFile, type Manifest } from "../contract/manifest.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { describeExcluded, describeOutput, rebaseManifest } from "../write/layout.js";
import { checkWritable } from "../write/parquet.js";
import { OutputFolder } from "../write/publish.js";
import { outputScoreColumns, writeOutputs } from "../write/write.js";
import { defaultLog, since, writeAndPublish, writeReport } from "./output.js";

/** Options of the stages run by the pipeline: those of scoring (restart, log, progress, the recipe's path), and the command line. */
export interface RunOptions extends ScoreOptions {
  /** The command line that runs the stage (the CLI's arguments), recorded in the manifest. */
  command?: string[];
}

export interface SelectResult {
  manifest: Manifest;
  /** One per selection (select.strategies), in the config's order. */
  selections: Selection[];
  scores: ScoresFile;
  inspection: DataInspection;
  /** The report, when one was written with the outputs (run). */
  report?: Report;
}

/** One line per output the manifest lists, its path under `dir`, and one for the excluded rows. */
export const describeOutputs = (dir: string, manifest: Manifest) => [
  ...manifest.outputs.map((o) => describeOutput(dir, o, manifest.unscored.policy)),
  ...(manifest.excluded ? [describeExcluded(dir, manifest.excluded)] : []),
];

/** What select reads: the data, the scores and the recipe. */
export function selectInputs(config: Config, opts: RunOptions): RunInput[] {
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
export async function claimOutputFolder(dir: string, names: string[], config: Config, inputs: RunInputs): Promise<OutputFolder> {
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
  // Checkpoints converted into model.cache when it is a folder of select.out_dir (models/ beside score.out, by default).
  const cache = config.model.path && (await isCheckpointFolder(config.model.path)) ? modelCacheOf(config) : undefined;
  const cacheName = cache && (await realPathOf(dirname(cache))) === outDir ? basename(cache) : undefined;
  const scoresArtifact = scoresHere ? isScoresArtifact(config.score.out) : () => false;
  return OutputFolder.claim(dir, (name) => scoresArtifact(name) || name === cacheName);
}

export const selectOutputNames = (config: Config) => [
  ...selectionsOf(config.select).flatMap((c) => config.select.ratios.map((r) => keepFile(c.name, r))),
  UNSCORED_FILE,
  ...(config.select.exclude.length ? [EXCLUDED_FILE] : []),
  MANIFEST_FILE,
  ...REPORT_FILES,
];

/** Every selection of the run, applied to the scores left after select.exclude (`excluded`: the reason per row, null without rules). */
export function selectAll(
  config: Config,
  scores: ScoresFile,
  inspection: DataInspection,
): { selections: Selection[]; excluded: (string | null)[] | null } {
  const excluded = exclusionsOf(scores.cols, config.select.exclude, config.score.out);
  const selections = selectionsOf(config.select).map((choice) => selectRows(scores, config.select, inspection.stratify, choice, excluded));
  return { selections, excluded };
}

/**
 * Loads the scores and checks they belong to the data; with another score.outlier_k than the file's, its
 * outliers are flagged again in memory (said through `log`), so that select.exclude and the summaries use the
 * config's k.
 */
export async function scoresForData(config: Config, source: DataSource, log?: (line: string) => void): Promise<ScoresFile> {
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
  const k = config.score.outlier_k;
  const flagged = withOutlierK(scores, k);
  if (flagged !== scores)
    log?.(
      `${path}: flagged for score.outlier_k ${meta.outlier_k}; selecting with ${k}: ${flagCounts(flagged.cols).outliers} outliers (dlc-prune score rewrites the file's flags)`,
    );
  return flagged;
}

/** The data's one light pass, checked for what writing needs: done before scoring, where it saves most. */
export async function inspectForOutput(
  config: { select: SelectionsConfig; score: Pick<Config["score"], "refine" | "ifd"> },
  source: DataSource,
): Promise<DataInspection> {
  const inspection = await inspectData(source, config.select.stratify);
  checkWritable(inspection.columnTypes, source.path, outputScoreColumns(config.select, config.score.refine !== "none", config.score.ifd));
  return inspection;
}

/** What the stages before select already have, when one process runs them (run). */
export interface EarlierStages {
  source?: DataSource;
  inspection?: DataInspection;
  /** The output folder, claimed and locked. */
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
  earlier: EarlierStages = {},
): Promise<SelectResult> {
  const log = opts.log ?? defaultLog;
  const source = earlier.source ?? new DataSource(config.data);
  const dir = config.select.out_dir;
  const folder =
    earlier.folder ?? (await claimOutputFolder(dir, selectOutputNames(config), config, await RunInputs.of(selectInputs(config, opts))));
  const { manifest, result } = await writeAndPublish(folder, { log, locked: !!earlier.folder }, async () => {
    const t0 = performance.now();
    const timings = { ...earlier.timings };
    const scores = await scoresForData(config, source, log);
    const inspection = earlier.inspection ?? (await inspectForOutput(config, source));
    if (inspection.rows !== scores.cols.dlc.length)
      throw new UserError(`${config.score.out}: has ${scores.cols.dlc.length} rows, ${source.path} has ${inspection.rows}`);
    const { selections, excluded } = selectAll(config, scores, inspection);
    const written = await writeOutputs({
      excluded,
      select: config.select,
      scoresPath: config.score.out,
      source,
      scores,
      selections,
      inspection,
      folder,
      signal: opts.signal,
    });
    timings.select_write = since(t0);
    const stored = rebaseManifest({ tool: TOOL_NAME, version: TOOL_VERSION, config, ...written.body }, ".", dir);
    let files = written.files;
    let report: Report | undefined;
    if (opts.withReport) {
      const t1 = performance.now();
      const made = await writeReport(folder, [{ label: ".", body: stored, scores, selections, excluded, group: inspection.group }], source);
      files = new Map([...files, ...made.files]);
      report = made.report;
      timings.report = since(t1);
    }
    const body = { ...stored, invocation: { command: opts.command ?? null, threads: earlier.threads ?? null }, timings };
    return { files, body, result: { selections, scores, inspection, report } };
  });
  return { manifest, ...result };
}
