// The executor's entry for `dlc-prune merge`: shard scores files, named by path or file-name pattern, into one.
import type { ScoresMeta } from "../contract/file.js";
import { expandShardPaths, mergeShards } from "../contract/merge.js";

/** Merges the shard files `patterns` name (`*`/`?` in a file name expanded) into `out`. */
export async function mergeShardFiles(patterns: string[], out: string, log?: (line: string) => void): Promise<ScoresMeta> {
  return mergeShards(await expandShardPaths(patterns), out, "--out", log);
}
