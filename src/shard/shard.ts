// Which part of the rows a process scores: from --shard I/N, a Slurm job array or a Kubernetes Indexed Job.
// Shards are sets of whole batches of the one batch plan of all rows, so every row's computation (and its
// floating-point result) is the same as in a single-process run.
import { basename } from "node:path";
import { UserError } from "../util/errors.js";

export interface Shard {
  index: number;
  count: number;
}

function parseShard(text: string, source: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index >= shard.count) throw new UserError(`${source}: "${text}" is not a shard I/N with 0 <= I < N`);
  return shard;
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw new UserError(`${name}=${v} is not a non-negative integer`);
  return Number(v);
}

/**
 * The shard of this process, or null for all rows: `score.shard` ("I/N") first; else a Slurm array task
 * (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or MIN/MAX/STEP); else a Kubernetes Indexed Job
 * (JOB_COMPLETION_INDEX) with `score.shards` as the count.
 */
export function resolveShard(shard: string | null, shards: number | null, env: NodeJS.ProcessEnv = process.env): Shard | null {
  const one = (s: Shard | null) => (s && s.count === 1 ? null : s);
  if (shard) return one(parseShard(shard, "score.shard"));
  const task = envInt(env, "SLURM_ARRAY_TASK_ID");
  if (task !== undefined) {
    const min = envInt(env, "SLURM_ARRAY_TASK_MIN") ?? 0;
    const step = envInt(env, "SLURM_ARRAY_TASK_STEP") ?? 1;
    const max = envInt(env, "SLURM_ARRAY_TASK_MAX");
    const count = envInt(env, "SLURM_ARRAY_TASK_COUNT") ?? (max !== undefined ? Math.floor((max - min) / step) + 1 : undefined);
    if (count === undefined) throw new UserError("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: cannot tell the number of shards");
    if ((task - min) % step !== 0) throw new UserError(`SLURM_ARRAY_TASK_ID=${task} is not on the array's step ${step} from ${min}`);
    return one(parseShard(`${(task - min) / step}/${count}`, "the Slurm array"));
  }
  const index = envInt(env, "JOB_COMPLETION_INDEX");
  if (index !== undefined) {
    if (!shards) throw new UserError(`JOB_COMPLETION_INDEX=${index} is set: set score.shards to the Indexed Job's completions`);
    return one(parseShard(`${index}/${shards}`, "JOB_COMPLETION_INDEX and score.shards"));
  }
  return null;
}

/** out/scores.arrow -> out/scores.shard-1-of-4.arrow */
export function shardPath(out: string, shard: Shard): string {
  const tag = `.shard-${shard.index}-of-${shard.count}`;
  return out.endsWith(".arrow") ? `${out.slice(0, -".arrow".length)}${tag}.arrow` : `${out}${tag}`;
}

/** Batch b belongs to shard b mod N (batches are longest first, so shards get similar work). */
export function ownsBatch(shard: Shard | null, batch: number): boolean {
  return !shard || batch % shard.count === shard.index;
}

/** An unscored row (no batch) belongs to shard row mod N. */
export function ownsUnscoredRow(shard: Shard | null, row: number): boolean {
  return !shard || row % shard.count === shard.index;
}

/**
 * Whether a file name in score.out's folder is one that scoring to `out` writes: the scores file, a shard
 * file of it, or the work folder of either. (An output folder may hold them beside the pruned files.)
 */
export function isScoresArtifact(out: string): (name: string) => boolean {
  const base = basename(out);
  return (name) => {
    const file = name.endsWith(".work") ? name.slice(0, -".work".length) : name;
    const m = /\.shard-(\d+)-of-(\d+)(\.arrow)?$/.exec(file);
    return file === base || (!!m && shardPath(base, { index: Number(m[1]), count: Number(m[2]) }) === file);
  };
}
