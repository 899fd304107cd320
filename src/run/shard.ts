// Which part of the rows a process scores, decided by the executor: --shard I/N, a Slurm job array or a
// Kubernetes Indexed Job. The score stage is given the shard; it never reads the environment.
import type { Shard } from "../contract/names.js";
import { UserError } from "../util/errors.js";

function parseShard(text: string, source: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index >= shard.count)
    throw new UserError(`${source}: "${text}" is not a shard I/N with 0 <= I < N`);
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
    if (count === undefined)
      throw new UserError(
        "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: cannot tell the number of shards",
      );
    if ((task - min) % step !== 0) throw new UserError(`SLURM_ARRAY_TASK_ID=${task} is not on the array's step ${step} from ${min}`);
    return one(parseShard(`${(task - min) / step}/${count}`, "the Slurm array"));
  }
  const index = envInt(env, "JOB_COMPLETION_INDEX");
  if (index !== undefined) {
    if (!shards) throw new UserError(`JOB_COMPLETION_INDEX=${index} is set: set score.shards to the Indexed Job's completions`);
    return one(parseShard(`${index}/${shards}`, "JOB_COMPLETION_INDEX and score.shards"));
  }
  // A shard count with no index would score every row while the user asked for shards.
  if (shards && shards > 1)
    throw new UserError(
      `score.shards ${shards} is set but JOB_COMPLETION_INDEX is not: score.shards is the count of a Kubernetes Indexed Job; elsewhere give the shard as score.shard (--shard I/N)`,
    );
  return null;
}
