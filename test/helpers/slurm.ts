// A single-node Slurm cluster of a test's own (Debian's slurm-wlm): its slurm.conf, state, spool and logs in a
// temp folder, daemons in the foreground as children of the test (their PIDs known), stopped by PID at the end.
// No munge: auth/none and cred/none (Slurm 22.05), so nothing outside the folder is configured or started.
// proctrack/linuxproc, under which Slurm signals only processes it can track by name: what the examples must
// survive (`npx` escapes it; `exec node` does not). cred_expire=5 and sched_interval=1 start a requeued task
// ~6 s after the requeue instead of ~120 s.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";

export interface Cluster {
  conf: string;
  dir: string;
  /** The environment clients (sbatch, squeue, scontrol, scancel) and submit.sh need. */
  env: NodeJS.ProcessEnv;
  daemons: ChildProcess[];
}

/** Why a cluster cannot be started here, or undefined when the binaries are there. */
export function slurmMissing(): string | undefined {
  for (const bin of ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"])
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0)
      return `${bin} is not installed (Debian: apt-get install slurm-wlm; .ci/run installs it)`;
  if (process.getuid?.() !== 0) return "slurmd must run as root to start jobs as the submitting user";
  return undefined;
}

function slurmConf(dir: string, [ctld, d]: number[]): string {
  return `ClusterName=dlctest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${ctld}
SlurmdPort=${d}
AuthType=auth/none
AuthInfo=cred_expire=5
CredType=cred/none
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/log/jobcomp.txt
ReturnToService=2
MinJobAge=600
KillWait=10
UnkillableStepTimeout=30
NodeName=localhost CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it returns a value, failing after `seconds` with `what`. */
export async function waitFor<T>(what: string, seconds: number, check: () => T | undefined): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await sleep(250);
  }
}

/** Runs a client command (sbatch, squeue ...) against the cluster; throws with its stderr on failure. */
export function slurm(cluster: Cluster, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: { ...cluster.env, ...opts.env }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export async function startCluster(dir: string): Promise<Cluster> {
  for (const d of ["state", "spool", "log"]) mkdirSync(join(dir, d), { recursive: true });
  const conf = join(dir, "slurm.conf");
  writeFileSync(conf, slurmConf(dir, [await freePort(), await freePort()]));
  const env = { ...process.env, SLURM_CONF: conf };
  const daemon = (cmd: string, args: string[]) => spawn(cmd, ["-D", "-f", conf, ...args], { env, stdio: "ignore" });
  const cluster: Cluster = { conf, dir, env, daemons: [daemon("slurmctld", []), daemon("slurmd", ["-N", "localhost"])] };
  try {
    await waitFor("the node to be idle", 30, () =>
      spawnSync("sinfo", ["-h", "-o", "%T"], { env, encoding: "utf8" }).stdout.trim() === "idle" ? true : undefined,
    );
  } catch (err) {
    await stopCluster(cluster);
    const log = (name: string) =>
      existsSync(join(dir, "log", name)) ? readFileSync(join(dir, "log", name), "utf8").slice(-1500) : "(none)";
    throw new Error(`${(err as Error).message}\nslurmctld.log: ${log("slurmctld.log")}\nslurmd.log: ${log("slurmd.log")}`);
  }
  return cluster;
}

/** A TCP port free now (the kernel's pick), so that clusters of parallel test runs do not meet. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Cancels every job, stops the daemons by PID, and kills job steps left behind (they outlive slurmd). */
export async function stopCluster(cluster: Cluster): Promise<void> {
  spawnSync("scancel", ["--user", String(process.getuid?.() ?? 0)], { env: cluster.env });
  await waitFor("the jobs to end", 20, () =>
    spawnSync("squeue", ["-h"], { env: cluster.env, encoding: "utf8" }).stdout.trim() === "" ? true : undefined,
  ).catch(() => undefined);
  for (const d of cluster.daemons) d.kill("SIGTERM");
  await Promise.all(
    cluster.daemons.map((d) => (d.exitCode !== null || d.signalCode !== null ? undefined : new Promise((r) => d.once("exit", r)))),
  );
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "slurmstepd" && environ.includes(`SLURM_CONF=${cluster.conf}`))
        process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

/** The jobs Slurm finished (jobcomp/filetxt): one record of KEY=VALUE fields per ended attempt. */
export function finishedJobs(cluster: Cluster): Record<string, string>[] {
  const file = join(cluster.dir, "log/jobcomp.txt");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])));
}

/** The jobs still queued or running: "JOBID STATE" lines. */
export function queued(cluster: Cluster): string[] {
  return slurm(cluster, "squeue", ["-h", "-o", "%i %T"]).split("\n").filter(Boolean);
}
