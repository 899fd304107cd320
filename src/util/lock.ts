// One writer at a time: a lock file beside what a run writes (a scores file, an output folder) names the
// process holding it. A second run is refused with that name; a lock whose process is gone (same host) is
// stale and taken over. The lock file appears whole (written under a temporary name, then hard-linked).
import { link, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { z } from "zod";
import { UserError, isSystemError } from "./errors.js";
import { readTextIfExists, tempSibling } from "./fs.js";
import { parseJson } from "./json.js";

type Holder = z.infer<typeof holderSchema>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class Lock {
  private constructor(private readonly path: string) {}

  /** Takes the lock at `path` for what `what` names ("score.out out/scores.arrow"), or says who holds it. */
  static async acquire(path: string, what: string): Promise<Lock> {
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    const temp = tempSibling(path);
    await writeFile(temp, JSON.stringify(me));
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await link(temp, path);
          return new Lock(path);
        } catch (err) {
          if (!isSystemError(err) || err.code !== "EEXIST" || attempt > 0) throw err;
        }
        const holder = await readHolder(path);
        if (holder === "foreign") throw new UserError(`${path}: exists and is not a lock of dlc-prune's; dlc-prune never replaces it: move it away`);
        if (holder && (holder.host !== me.host || alive(holder.pid)))
          throw new UserError(`${what}: another dlc-prune (pid ${holder.pid} on ${holder.host}, since ${holder.since}) is writing it; wait for it, or remove ${path} if that process is gone`);
        await rm(path, { force: true }); // its process is gone: a stale lock
      }
    } finally {
      await rm(temp, { force: true });
    }
  }

  async release(): Promise<void> {
    const holder = await readHolder(this.path);
    if (holder !== "foreign" && holder?.pid === process.pid && holder.host === hostname()) await rm(this.path, { force: true });
  }
}

const holderSchema = z.object({ pid: z.number().int(), host: z.string(), since: z.string() });

/** Who holds the lock at `path`: undefined when there is none, "foreign" when the file is not a lock of ours. */
async function readHolder(path: string): Promise<Holder | "foreign" | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  const parsed = parseJson(holderSchema, text);
  return "value" in parsed ? parsed.value : "foreign";
}
