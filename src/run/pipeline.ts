// The stages chained: score -> select -> write -> report. Each can also run alone (CLI verbs, API).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { inspectData, type DataInspection } from "../data/inspect.js";
import { buildReport, writeReport, type Report } from "../report/report.js";
import { score, type ScoreOptions, type ScoreResult } from "../score/score.js";
import { readScoresFile, type ScoresFile, type ScoresMeta } from "../score/scores-file.js";
import { expandShardPaths, mergeShards } from "../shard/merge.js";
import { selectRows, type Selection } from "../select/select.js";
import { UserError, readingFile } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { MANIFEST_FILE, writeOutputs, type Manifest } from "../write/write.js";
import { checkWritable } from "../write/parquet.js";

export interface SelectResult {
  manifest: Manifest;
  selection: Selection;
  scores: ScoresFile;
  inspection: DataInspection;
}

/** Loads the scores and checks they belong to the configured data (its sha256, when known, is not recomputed). */
async function scoresForData(config: Config, dataSha256?: string): Promise<{ scores: ScoresFile; dataSha256: string }> {
  const path = config.score.out;
  const scores = await readScoresFile(path);
  const { meta } = scores;
  if (meta.shard) throw new UserError(`${path}: shard ${meta.shard.index}/${meta.shard.count} of a scoring run; merge the shards first (dlc-prune merge)`);
  const sha = dataSha256 ?? (await sha256File(config.data.path));
  if (meta.data.sha256 !== sha)
    throw new UserError(`${path}: scores of another data file (${meta.data.path}, ${meta.data.rows} rows, sha256 ${meta.data.sha256.slice(0, 12)}), not of ${config.data.path} (sha256 ${sha.slice(0, 12)})`);
  return { scores, dataSha256: sha };
}

/** The data's one light pass, checked for what writing needs: done before scoring, where it saves most. */
async function inspectForOutput(config: Config): Promise<DataInspection> {
  const inspection = await inspectData(config);
  checkWritable(inspection.columns, config.data.path);
  return inspection;
}

/** select + write: keep-<ratio>.parquet, unscored.jsonl and manifest.json in select.out_dir. */
export async function selectAndWrite(config: Config, known: { inspection?: DataInspection; dataSha256?: string } = {}): Promise<SelectResult> {
  const { scores, dataSha256 } = await scoresForData(config, known.dataSha256);
  const inspection = known.inspection ?? (await inspectForOutput(config));
  if (inspection.rows !== scores.cols.dlc.length)
    throw new UserError(`${config.score.out}: has ${scores.cols.dlc.length} rows, ${config.data.path} has ${inspection.rows}`);
  const selection = selectRows(scores, config.select, inspection.stratify);
  const manifest = await writeOutputs({ config, scores, dataSha256, selection, inspection });
  return { manifest, selection, scores, inspection };
}

/** The report of a finished select, from its manifest; the selection is recomputed (it is deterministic). */
export async function report(outDir: string): Promise<Report> {
  const path = join(outDir, MANIFEST_FILE);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readingFile(path, () => readFile(path, "utf8"))) as Manifest;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const config = parseConfig(manifest.config as unknown as Record<string, unknown>, path);
  const { scores } = await scoresForData(config);
  if (scores.sha256 !== manifest.scores.sha256) throw new UserError(`${config.score.out}: changed since ${path} was written; rerun select`);
  const inspection = await inspectData(config);
  const selection = selectRows(scores, config.select, inspection.stratify);
  const result = buildReport(manifest, scores, selection, inspection);
  await writeReport(outDir, result);
  return result;
}

export interface RunResult {
  /** The scoring run, or the metadata of the merged shards. */
  score: ScoreResult | ScoresMeta;
  manifest: Manifest;
  report: Report;
}

/** A run that scored one shard (a job array task): selection waits for the merge. */
export interface ShardRunResult {
  score: ScoreResult;
}

/**
 * The whole job: score (resuming, or reusing an up-to-date scores file) or merge the shard files of a
 * sharded scoring (`score.merge`), then select, write, report.
 */
export async function run(config: Config, opts: ScoreOptions = {}): Promise<RunResult | ShardRunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const inspection = await inspectForOutput(config);
  let scored: ScoreResult | ScoresMeta;
  if (config.score.merge.length) scored = await mergeShards(await expandShardPaths(config.score.merge), config.score.out);
  else {
    scored = await score(config, opts);
    // In a job array each task scores its shard; the job that merges them selects.
    if (scored.shard) {
      log(`scored shard ${scored.shard.index}/${scored.shard.count} to ${scored.out}; once every shard is done, merge and select (run with score.merge, or dlc-prune merge then select)`);
      return { score: scored };
    }
  }
  const { manifest, selection, scores } = await selectAndWrite(config, { inspection, dataSha256: "dataSha256" in scored ? scored.dataSha256 : undefined });
  const result = buildReport(manifest, scores, selection, inspection);
  await writeReport(config.select.out_dir, result);
  log(`wrote ${manifest.outputs.map((o) => o.file).join(", ")}, unscored.jsonl, manifest.json, report.html and report.json to ${config.select.out_dir}`);
  return { score: scored, manifest, report: result };
}
