// Locks under schedulers: a lock names the scheduler task it was taken in; a lock of this very process id and
// host (a container restarted in place), of a dead process on this host, or of this scheduler task on another
// host (a requeue onto another node) is taken over with a log line; any other live holder is refused.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Lock, schedulerTask } from "../../src/util/lock.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-lock-");
let n = 0;
const fresh = () => join(tmp, `lock-${n++}`);
const SCHEDULER_ENV = ["SLURM_JOB_ID", "SLURM_CLUSTER_NAME", "SLURM_STEP_ID", "SLURM_PROCID", "JOB_UID", "JOB_COMPLETION_INDEX"];
const saved = Object.fromEntries(SCHEDULER_ENV.map((k) => [k, process.env[k]]));

afterEach(() => {
  for (const k of SCHEDULER_ENV)
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
});

/** A pid no process has: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", ""]).pid!;
}

/** Writes a lock at `path` naming `holder`, then takes it: the log lines, or the refusal. */
async function takeOver(holder: Record<string, unknown>): Promise<{ logged: string[]; refused?: string }> {
  const path = fresh();
  const text = JSON.stringify({ since: "2026-01-01T00:00:00Z", ...holder });
  writeFileSync(path, text);
  const logged: string[] = [];
  try {
    const lock = await Lock.acquire(path, "score.out s.arrow", (line) => logged.push(line));
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    await lock.release();
    expect(existsSync(path)).toBe(false);
    return { logged };
  } catch (err) {
    expect(readFileSync(path, "utf8")).toBe(text); // a refusal leaves the lock as it was
    return { logged, refused: (err as Error).message };
  }
}

describe("the scheduler task of a process", () => {
  it("is the Slurm job (with its cluster, and its step and task under srun), or the Kubernetes Job's uid and index, else none", () => {
    expect(schedulerTask({ SLURM_JOB_ID: "812", SLURM_ARRAY_JOB_ID: "800", SLURM_ARRAY_TASK_ID: "3" })).toBe("slurm job 812");
    expect(schedulerTask({ SLURM_JOB_ID: "812", SLURM_CLUSTER_NAME: "hpc" })).toBe("slurm job hpc:812");
    expect(schedulerTask({ SLURM_JOB_ID: "812", SLURM_STEP_ID: "0", SLURM_PROCID: "3" })).toBe("slurm job 812 step 0 task 3");
    expect(schedulerTask({ JOB_UID: "6f1c", JOB_COMPLETION_INDEX: "5" })).toBe("kubernetes job 6f1c index 5");
    expect(schedulerTask({ JOB_COMPLETION_INDEX: "5" })).toBeUndefined(); // the index alone names no task
    expect(schedulerTask({})).toBeUndefined();
  });

  it("is recorded in the lock", async () => {
    process.env.SLURM_JOB_ID = "4242";
    const path = fresh();
    const lock = await Lock.acquire(path, "score.out s.arrow");
    expect(JSON.parse(readFileSync(path, "utf8"))).toMatchObject({ pid: process.pid, host: hostname(), task: "slurm job 4242" });
    await lock.release();
  });
});

describe("a lock found", () => {
  it("naming this process id and host from before it started (a container restarted in place) is taken over, with a log line", async () => {
    const r = await takeOver({ pid: process.pid, host: hostname() });
    expect(r.refused).toBeUndefined();
    expect(r.logged).toEqual([expect.stringMatching(/^took over the lock .* of 2026-01-01T00:00:00Z: it names this process id/)]);
    // Taken since this process started: another live container with this host name and pid (host networking).
    const since = new Date().toISOString();
    const live = await takeOver({ pid: process.pid, host: hostname(), since });
    expect(live.refused).toContain(`another dlc-prune (pid ${process.pid} on ${hostname()}`);
  });

  it("of a dead process on this host is taken over, with a log line", async () => {
    const pid = deadPid();
    const r = await takeOver({ pid, host: hostname() });
    expect(r.logged).toEqual([expect.stringContaining(`its process ${pid} on this host is gone`)]);
  });

  it("of this scheduler task on another host (requeued onto another node) is taken over; another task's is refused", async () => {
    process.env.SLURM_JOB_ID = "77";
    const same = await takeOver({ pid: 1, host: "node-a", task: "slurm job 77" });
    expect(same.logged).toEqual([expect.stringContaining("it is this scheduler task's (slurm job 77), from node-a")]);
    const other = await takeOver({ pid: 1, host: "node-a", task: "slurm job 78" });
    expect(other.refused).toContain("another dlc-prune (pid 1 on node-a, slurm job 78, since 2026-01-01T00:00:00Z) is writing it");
    delete process.env.SLURM_JOB_ID;
    const outside = await takeOver({ pid: 1, host: "node-a", task: "slurm job 77" });
    expect(outside.refused).toContain("another dlc-prune (pid 1 on node-a");
  });

  it("of a live process on this host is refused, even of this scheduler task (two steps of one job)", async () => {
    process.env.SLURM_JOB_ID = "77";
    const parent = process.ppid; // alive, not this process
    const r = await takeOver({ pid: parent, host: hostname(), task: "slurm job 77" });
    expect(r.refused).toContain(`another dlc-prune (pid ${parent} on ${hostname()}, slurm job 77`);
    expect(r.logged).toEqual([]);
  });

  it("held by this process already is refused, not taken over", async () => {
    const path = fresh();
    const lock = await Lock.acquire(path, "score.out s.arrow");
    await expect(Lock.acquire(path, "score.out s.arrow")).rejects.toThrow("this process is writing it already");
    await expect(Lock.acquire(join(path, "..", basename(path)), "score.out s.arrow")).rejects.toThrow("this process is writing it already");
    await lock.release();
    // Two takes at once: one holds it, the other is refused.
    const both = await Promise.allSettled([Lock.acquire(path, "score.out s.arrow"), Lock.acquire(path, "score.out s.arrow")]);
    expect(both.map((b) => b.status).sort()).toEqual(["fulfilled", "rejected"]);
    await (both.find((b) => b.status === "fulfilled") as PromiseFulfilledResult<Lock>).value.release();
    await (await Lock.acquire(path, "score.out s.arrow")).release(); // released: free again
  });
});
