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

export interface SelectResult {
  manifest: Manifest;
  selection: Selection;
  scores: ScoresFile;
  inspection: DataInspection;
}

/** Loads the scores and checks they belong to the configured data. */
async function scoresForData(config: Config): Promise<{ scores: ScoresFile; scoresSha256: string; dataSha256: string }> {
  const path = config.score.out;
  const scores = await readScoresFile(path);
  const { meta } = scores;
  if (meta.shard) throw new UserError(`${path}: shard ${meta.shard.index}/${meta.shard.count} of a scoring run; merge the shards first (dlc-prune merge)`);
  const dataSha256 = await sha256File(config.data.path);
  if (meta.data.sha256 !== dataSha256)
    throw new UserError(`${path}: scores of another data file (${meta.data.path}, ${meta.data.rows} rows, sha256 ${meta.data.sha256.slice(0, 12)}), not of ${config.data.path} (sha256 ${dataSha256.slice(0, 12)})`);
  return { scores, scoresSha256: await sha256File(path), dataSha256 };
}

/** select + write: keep-<ratio>.parquet, unscored.jsonl and manifest.json in select.out_dir. */
export async function selectAndWrite(config: Config): Promise<SelectResult> {
  const { scores, scoresSha256, dataSha256 } = await scoresForData(config);
  const inspection = await inspectData(config);
  if (inspection.rows !== scores.cols.dlc.length)
    throw new UserError(`${config.score.out}: has ${scores.cols.dlc.length} rows, ${config.data.path} has ${inspection.rows}`);
  const selection = selectRows(scores, config.select, inspection.stratify);
  const manifest = await writeOutputs({ config, scores, scoresSha256, dataSha256, selection, inspection });
  return { manifest, selection, scores, inspection };
}

/** The report of a finished select, from its manifest; the selection is recomputed (it is deterministic). */
export async function report(outDir: string): Promise<Report> {
  const path = join(outDir, MANIFEST_FILE);
  const manifest = JSON.parse(await readingFile(path, () => readFile(path, "utf8"))) as Manifest;
  const config = parseConfig(manifest.config as unknown as Record<string, unknown>, path);
  const { scores, scoresSha256 } = await scoresForData(config);
  if (scoresSha256 !== manifest.scores.sha256) throw new UserError(`${config.score.out}: changed since ${path} was written; rerun select`);
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

/**
 * The whole job: score (resuming, or reusing an up-to-date scores file) or merge the shard files of a
 * sharded scoring (`score.merge`), then select, write, report.
 */
export async function run(config: Config, opts: ScoreOptions = {}): Promise<RunResult> {
  const scored = config.score.merge.length ? await mergeShards(await expandShardPaths(config.score.merge), config.score.out) : await score(config, opts);
  const { manifest, selection, scores, inspection } = await selectAndWrite(config);
  const result = buildReport(manifest, scores, selection, inspection);
  await writeReport(config.select.out_dir, result);
  (opts.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(
    `wrote ${manifest.outputs.map((o) => o.file).join(", ")}, unscored.jsonl, manifest.json, report.html and report.json to ${config.select.out_dir}`,
  );
  return { score: scored, manifest, report: result };
}
