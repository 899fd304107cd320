// One writer at a time: a lock file beside what a run writes (a scores file, an output folder) names the
// process holding it, and the scheduler's task it runs as (a Slurm job, a Kubernetes Indexed Job's index). A
// second run is refused with that name. A lock is stale, and taken over with a log line, when its process is
// gone (same host), when it names this very process id and host from before this process started (a
// container restarted in place is PID 1 again), or when it names this scheduler task on another host (a task requeued onto another node after a
// hard kill: the scheduler runs one attempt of a task at a time). The lock file appears whole (written under
// a temporary name, then hard-linked).
//
// Taking over is atomic: two runs that find the same stale lock must not both remove it (the second would
// remove the first one's fresh lock). The stale lock is renamed to a name of this process's, which only one
// rename can do, and read again there: if it is no longer the stale lock (another run took it over first and
// linked its own), it is linked back and this run is refused. A third run could link its own in the moment
// the lock is away; that needs three runs on one stale lock within microseconds.
import { link, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { UserError, isSystemError } from "./errors.js";
import { processAlive, readTextIfExists, removeDeadTemps, tempSibling } from "./fs.js";
import { parseJson } from "./json.js";

type Holder = z.infer<typeof holderSchema>;

/** Tries of link-or-take-over before giving up: each failed try means another run changed the lock meanwhile. */
const ATTEMPTS = 8;

/**
 * The scheduler's name for the task this process runs as, stable across its attempts (a requeue, a pod
 * retried): a Slurm job (an array task's job id is its own) or job step, or a Kubernetes Indexed Job's index,
 * whose Job's uid the example manifest passes as JOB_UID. Undefined outside a scheduler.
 */
export function schedulerTask(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_JOB_ID) {
    // Steps of one job (srun) on several nodes are distinct tasks; a requeued batch script is the same one.
    const step = env.SLURM_STEP_ID ? ` step ${env.SLURM_STEP_ID}${env.SLURM_PROCID ? ` task ${env.SLURM_PROCID}` : ""}` : "";
    return `slurm job ${env.SLURM_CLUSTER_NAME ? `${env.SLURM_CLUSTER_NAME}:` : ""}${env.SLURM_JOB_ID}${step}`;
  }
  if (env.JOB_UID && env.JOB_COMPLETION_INDEX) return `kubernetes job ${env.JOB_UID} index ${env.JOB_COMPLETION_INDEX}`;
  return undefined;
}

/**
 * Locks this process holds or is taking (absolute paths): taking one again is refused, never taken over as an
 * earlier incarnation's (a lock naming this process id).
 */
const held = new Set<string>();
/** When this process started: a lock naming its pid but taken since was not an earlier incarnation's. */
const STARTED = Date.now() - process.uptime() * 1000;

/** Why `holder`'s lock may be taken over by `me`, or undefined when it is another live run's. */
function staleBecause(holder: Holder, me: Holder): string | undefined {
  if (holder.host === me.host) {
    // The same pid and host taken after this process started: another container sharing the host name, alive.
    if (holder.pid === me.pid)
      return Date.parse(holder.since) < STARTED
        ? `it names this process id (${me.pid}) on this host, from before this process started: an earlier run in this container`
        : undefined;
    return processAlive(holder.pid) ? undefined : `its process ${holder.pid} on this host is gone`;
  }
  if (holder.task !== undefined && holder.task === me.task) return `it is this scheduler task's (${me.task}), from ${holder.host}`;
  return undefined;
}

export class Lock {
  private constructor(private readonly path: string) {}

  /**
   * Takes the lock at `path` for what `what` names ("score.out out/scores.arrow"), or says who holds it. A
   * stale lock taken over is logged.
   */
  static async acquire(path: string, what: string, log: (line: string) => void = () => {}): Promise<Lock> {
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), task: schedulerTask() };
    const key = resolve(path);
    if (held.has(key)) throw new UserError(`${what}: this process is writing it already (lock ${path})`);
    held.add(key); // before any await: two takes of one path in this process cannot both pass
    let taken = false;
    const temp = tempSibling(path);
    await writeFile(temp, JSON.stringify(me));
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        try {
          await link(temp, path);
          taken = true;
          // The temporary files and moved-aside locks of runs killed while taking this lock.
          await removeDeadTemps(path, ["tmp", "old"]);
          return new Lock(path);
        } catch (err) {
          if (!isSystemError(err) || (err.code !== "EEXIST" && err.code !== "ENOENT")) throw err;
          // ENOENT: a run on another host (where this pid means nothing) removed our temporary file as a killed run's.
          if (err.code === "ENOENT") {
            await writeFile(temp, JSON.stringify(me));
            continue;
          }
        }
        const text = await readTextIfExists(path);
        if (text === undefined) continue; // released meanwhile
        const holder = holderOf(text);
        if (holder === "foreign")
          throw new UserError(`${path}: exists and is not a lock of dlc-prune's; dlc-prune never replaces it: move it away`);
        const stale = staleBecause(holder, me);
        if (!stale)
          throw new UserError(
            `${what}: another dlc-prune (pid ${holder.pid} on ${holder.host}${holder.task ? `, ${holder.task}` : ""}, since ${holder.since}) is writing it; wait for it, or remove ${path} if that process is gone`,
          );
        if (await removeStale(path, text)) log(`took over the lock ${path} of ${holder.since}: ${stale}`);
      }
      throw new UserError(`${what}: could not take the lock ${path}: other dlc-prune runs kept taking it; run one at a time`);
    } finally {
      if (!taken) held.delete(key);
      await rm(temp, { force: true });
    }
  }

  async release(): Promise<void> {
    held.delete(resolve(this.path));
    const holder = await readHolder(this.path);
    if (holder !== "foreign" && holder?.pid === process.pid && holder.host === hostname()) await rm(this.path, { force: true });
  }
}

/**
 * Removes the lock at `path` if it still is the stale lock whose text was `stale` (see the top of the file);
 * true when this run removed it.
 */
async function removeStale(path: string, stale: string): Promise<boolean> {
  const aside = tempSibling(path, "old");
  try {
    await rename(path, aside);
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return false; // another run moved it first
    throw err;
  }
  const moved = await readTextIfExists(aside); // undefined: removed by a run on another host, as above
  const removed = moved === stale;
  if (moved !== undefined && !removed)
    // Another run's fresh lock: back where it was (never over a lock that appeared meanwhile).
    await link(aside, path).catch((err: unknown) => {
      if (!isSystemError(err) || err.code !== "EEXIST") throw err;
    });
  await rm(aside, { force: true });
  return removed;
}

/** `task`: schedulerTask() of the holder, where it ran under a scheduler (absent in locks of 0.3.0). */
const holderSchema = z.object({ pid: z.number().int(), host: z.string(), since: z.string(), task: z.string().optional() });

function holderOf(text: string): Holder | "foreign" {
  const parsed = parseJson(holderSchema, text);
  return "value" in parsed ? parsed.value : "foreign";
}

/** Who holds the lock at `path`: undefined when there is none, "foreign" when the file is not a lock of ours. */
async function readHolder(path: string): Promise<Holder | "foreign" | undefined> {
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : holderOf(text);
}
