// The whole job: score (or merge shards) -> select -> write -> report. Each step can also run alone (CLI
// verbs, API: src/run/score.ts, merge.ts, select.ts, report.ts). Before any long work, every output location
// is checked.
import { performance } from "node:perf_hooks";
import type { Config } from "../config/schema.js";
import { DataSource } from "../data/source.js";
import type { Report } from "../report/report.js";
import type { ScoresMeta } from "../contract/file.js";
import { expandShardPaths, mergeShards } from "../contract/merge.js";
import { RunInputs } from "../util/paths.js";
import { MANIFEST_FILE, type Manifest } from "../contract/manifest.js";
import { modelToScore } from "./model.js";
import { checkBeforeScoring } from "./preflight.js";
import { scoreStage, type ScoreResult } from "./score.js";
import { resolveShard } from "./shard.js";
import { defaultLog, since } from "./output.js";
import {
  claimOutputFolder,
  describeOutputs,
  inspectForOutput,
  selectAndWrite,
  selectInputs,
  selectOutputNames,
  type RunOptions,
} from "./select.js";

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
    if (shards.length) scored = await mergeShards(shards, config.score.out, "score.out", log, config.score.outlier_k);
    else {
      scored = await scoreStage(config, await modelToScore(config, log), { ...opts, source, shard });
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
    for (const line of describeOutputs(config.select.out_dir, manifest)) log(line);
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
