// How scores files are named: a shard of a run writes beside the run's file, tagged with its index.
import { basename } from "node:path";

/** One part of a sharded scoring run: batches b with b mod count = index. */
export interface Shard {
  index: number;
  count: number;
}

/** out/scores.arrow -> out/scores.shard-1-of-4.arrow */
export function shardPath(out: string, shard: Shard): string {
  const tag = `.shard-${shard.index}-of-${shard.count}`;
  return out.endsWith(".arrow") ? `${out.slice(0, -".arrow".length)}${tag}.arrow` : `${out}${tag}`;
}

/** The lock file of a scores file (src/util/lock.ts). */
export function lockPath(out: string): string {
  return `${out}.lock`;
}

/**
 * Whether a file name in score.out's folder is one that scoring to `out` writes: the scores file, a shard
 * file of it, or the work folder or lock of either. (An output folder may hold them beside the pruned files.)
 */
export function isScoresArtifact(out: string): (name: string) => boolean {
  const base = basename(out);
  return (name) => {
    const file = name.replace(/\.(work|lock)$/, "");
    const m = /\.shard-(\d+)-of-(\d+)(\.arrow)?$/.exec(file);
    return file === base || (!!m && shardPath(base, { index: Number(m[1]), count: Number(m[2]) }) === file);
  };
}

/** Whether a file name looks like a scores file or one of its companions (a shard, the work folder, the lock). */
export function looksLikeScoresFile(name: string): boolean {
  return /\.arrow(\.(work|lock))?$/.test(name) || /\.shard-\d+-of-\d+/.test(name);
}
