// dlc-prune as a library: the pipeline's stages for use in-process (a Node data pipeline), typed.
//
//   import { loadConfig, run } from "dlc-prune";
//   const config = await loadConfig({ file: "configs/demo.yaml", overrides: [["select.ratios", [0.2]]] });
//   const { manifest } = await run(config);

export { configSchema, PRESETS, type Config, type ScoreConfig, type SelectConfig } from "./config/schema.js";
export { loadConfig, parseConfig, type ConfigSources, type Override } from "./config/load.js";
export { configKeys, type KeyInfo } from "./config/keys.js";
export { scoreOnly as score, type ScoreOptions, type ScoreProgress, type ScoreResult } from "./run/score.js";
export { readScoresFile, type ScoresFile, type ScoresMeta, type ScoreColumns } from "./contract/file.js";
export type { RunRecord } from "./contract/record.js";
export type { Shard } from "./contract/names.js";
export { run, type RunResult, type ShardRunResult } from "./run/pipeline.js";
export { selectAndWrite as select, type RunOptions, type SelectResult } from "./run/select.js";
export { report, compare } from "./run/report.js";
export { estimate, type Estimate, type EstimateOptions } from "./run/estimate.js";
export { selectRows, selectionsOf, type Selection, type SelectionChoice, type RatioSelection } from "./select/select.js";
export { flexrandCounts, type Strategy } from "./select/strategies.js";
export type { Manifest, OutputSummary } from "./contract/manifest.js";
export type { Report } from "./report/report.js";
export { writeTinyModel, type TinyOptions } from "./kit/tiny.js";
export { importLlama2c } from "./kit/llama2c.js";
export { UserError } from "./util/errors.js";
