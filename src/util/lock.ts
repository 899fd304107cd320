// One writer at a time: a lock file beside what a run writes (a scores file, an output folder) names the
// process holding it. A second run is refused with that name; a lock whose process is gone (same host) is
// stale and taken over. The lock file appears whole (written under a temporary name, then hard-linked).
//
// Taking over is atomic: two runs that find the same stale lock must not both remove it (the second would
// remove the first one's fresh lock). The stale lock is renamed to a name of this process's, which only one
// rename can do, and read again there: if it is no longer the stale lock (another run took it over first and
// linked its own), it is linked back and this run is refused. A third run could link its own in the moment
// the lock is away; that needs three runs on one stale lock within microseconds.
import { link, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { z } from "zod";
import { UserError, isSystemError } from "./errors.js";
import { processAlive, readTextIfExists, removeDeadTemps, tempSibling } from "./fs.js";
import { parseJson } from "./json.js";

type Holder = z.infer<typeof holderSchema>;

/** Tries of link-or-take-over before giving up: each failed try means another run changed the lock meanwhile. */
const ATTEMPTS = 8;

export class Lock {
  private constructor(private readonly path: string) {}

  /** Takes the lock at `path` for what `what` names ("score.out out/scores.arrow"), or says who holds it. */
  static async acquire(path: string, what: string): Promise<Lock> {
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    const temp = tempSibling(path);
    await writeFile(temp, JSON.stringify(me));
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        try {
          await link(temp, path);
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
        if (holder.host !== me.host || processAlive(holder.pid))
          throw new UserError(
            `${what}: another dlc-prune (pid ${holder.pid} on ${holder.host}, since ${holder.since}) is writing it; wait for it, or remove ${path} if that process is gone`,
          );
        await removeStale(path, text); // its process is gone
      }
      throw new UserError(`${what}: could not take the lock ${path}: other dlc-prune runs kept taking it; run one at a time`);
    } finally {
      await rm(temp, { force: true });
    }
  }

  async release(): Promise<void> {
    const holder = await readHolder(this.path);
    if (holder !== "foreign" && holder?.pid === process.pid && holder.host === hostname()) await rm(this.path, { force: true });
  }
}

/** Removes the lock at `path` if it still is the stale lock whose text was `stale` (see the top of the file). */
async function removeStale(path: string, stale: string): Promise<void> {
  const aside = tempSibling(path, "old");
  try {
    await rename(path, aside);
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return; // another run moved it first
    throw err;
  }
  const moved = await readTextIfExists(aside); // undefined: removed by a run on another host, as above
  if (moved !== undefined && moved !== stale)
    // Another run's fresh lock: back where it was (never over a lock that appeared meanwhile).
    await link(aside, path).catch((err: unknown) => {
      if (!isSystemError(err) || err.code !== "EEXIST") throw err;
    });
  await rm(aside, { force: true });
}

const holderSchema = z.object({ pid: z.number().int(), host: z.string(), since: z.string() });

function holderOf(text: string): Holder | "foreign" {
  const parsed = parseJson(holderSchema, text);
  return "value" in parsed ? parsed.value : "foreign";
}

/** Who holds the lock at `path`: undefined when there is none, "foreign" when the file is not a lock of ours. */
async function readHolder(path: string): Promise<Holder | "foreign" | undefined> {
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : holderOf(text);
}
