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
 * The shard of a Slurm array task from its array's range, which must be the whole 0..N-1: a resubmitted part
 * of an array (`--array=3`, `--array=0,2`) would otherwise score as shard 0 of 1 (every row) or 0 of 2.
 */
function slurmArrayShard(task: number, env: NodeJS.ProcessEnv): Shard {
  const [min, max, step] = ["MIN", "MAX", "STEP"].map((k) => envInt(env, `SLURM_ARRAY_TASK_${k}`));
  const count = envInt(env, "SLURM_ARRAY_TASK_COUNT");
  const whole = min === 0 && max !== undefined && (step ?? 1) === 1 && (count ?? max + 1) === max + 1;
  if (!whole)
    throw new UserError(
      `SLURM_ARRAY_TASK_ID=${task}: this task's array (SLURM_ARRAY_TASK_MIN=${min ?? "unset"}, MAX=${max ?? "unset"}, COUNT=${count ?? "unset"}, STEP=${step ?? "unset"}) is not the whole range 0..N-1, so it does not tell the number of shards (a resubmitted part of an array?): give it, --shard ${task}/N or score.shards N`,
    );
  return parseShard(`${task}/${max + 1}`, "the Slurm array");
}

/**
 * The shard of this process, or null for all rows: `score.shard` ("I/N") first; else a Slurm array task
 * (SLURM_ARRAY_TASK_ID), of `score.shards` shards when set, else of an array 0..N-1; else a Kubernetes
 * Indexed Job (JOB_COMPLETION_INDEX) with `score.shards` as the count.
 */
export function resolveShard(shard: string | null, shards: number | null, env: NodeJS.ProcessEnv = process.env): Shard | null {
  const one = (s: Shard | null) => (s && s.count === 1 ? null : s);
  if (shard) return one(parseShard(shard, "score.shard"));
  const task = envInt(env, "SLURM_ARRAY_TASK_ID");
  if (task !== undefined)
    return one(shards ? parseShard(`${task}/${shards}`, "SLURM_ARRAY_TASK_ID and score.shards") : slurmArrayShard(task, env));
  const index = envInt(env, "JOB_COMPLETION_INDEX");
  if (index !== undefined) {
    if (!shards) throw new UserError(`JOB_COMPLETION_INDEX=${index} is set: set score.shards to the Indexed Job's completions`);
    return one(parseShard(`${index}/${shards}`, "JOB_COMPLETION_INDEX and score.shards"));
  }
  // A shard count with no index would score every row while the user asked for shards.
  if (shards && shards > 1)
    throw new UserError(
      `score.shards ${shards} is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is: score.shards is the shard count of a Slurm array or a Kubernetes Indexed Job; elsewhere give the shard as score.shard (--shard I/N)`,
    );
  return null;
}
