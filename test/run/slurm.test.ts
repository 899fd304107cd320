// The Slurm examples on a real single-node Slurm (Debian's slurm-wlm, started by the test: test/helpers/slurm.ts),
// run as README "Slurm" says for a CPU cluster: submit.sh with documented variables only (SHARDS_N, CONFIG,
// SHARDS, and DLC_PRUNE_DIR / DLC_PRUNE_BIN since the project is a temp folder, not this repository).
// Every task runs, the merge waits for them, and the outputs equal a single run's; one index resubmitted alone
// scores its shard; a cancelled task is stopped by SIGTERM (saving its progress), the merge is cancelled instead
// of pending forever, and the task requeued resumes, its log appended.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import { CLI, runCli } from "../helpers/cli.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { finishedJobs, queued, slurm, slurmMissing, startCluster, stopCluster, waitFor, type Cluster } from "../helpers/slurm.js";
import { tempDir } from "../helpers/tmp.js";

const SUBMIT = fileURLToPath(new URL("../../examples/slurm/submit.sh", import.meta.url));
const SCORE_ARRAY = fileURLToPath(new URL("../../examples/slurm/score-array.sbatch", import.meta.url));
const MERGE = fileURLToPath(new URL("../../examples/slurm/merge-select.sbatch", import.meta.url));
const missing = slurmMissing();
const tmp = tempDir("dlc-prune-slurm-");
let cluster: Cluster;
let model: string;

/** A project folder: rows, and a recipe (paths relative to it, as submit.sh runs from there) with `score` keys. */
function project(name: string, rows: number, score: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeJsonl(
    join(dir, "rows.jsonl"),
    Array.from({ length: rows }, (_, i) => ({
      id: `r${i}`,
      prompt: `Write ${i % 9} lines about ${["rain", "the harbour", "a small town", "winter"][i % 4]}, number ${i}.`,
      response: "The harbour was quiet and the rain came down on the town. ".repeat(1 + (i % 5)),
    })),
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `data: { path: rows.jsonl, fields: { id: id } }\nmodel: { path: ${model} }\nscore: { out: out/scores.arrow, block_rows: 16, ${score} }\nselect: { ratios: [0.3], out_dir: out }\n`,
  );
  return dir;
}

/** The variables README "Scaling out" documents, for a CPU cluster, in `dir`. */
const envFor = (dir: string, shards: number) => ({
  SHARDS_N: String(shards),
  CONFIG: "job.yaml",
  DLC_PRUNE_BIN: CLI,
  SHARDS: "out/scores.shard-*.arrow",
  DLC_PRUNE_DIR: dir,
});

/** Submits the examples with submit.sh from `dir`: the array's and the merge's job ids. */
function submit(dir: string, shards: number): { array: string; merge: string } {
  const out = slurm(cluster, "bash", [SUBMIT], { cwd: dir, env: envFor(dir, shards) });
  const m = /job array (\d+) \((\d+) shards\); merge \+ select: job (\d+)/.exec(out);
  expect(m, out).not.toBeNull();
  expect(Number(m![2])).toBe(shards);
  return { array: m![1]!, merge: m![3]! };
}

const idle = () => (queued(cluster).length === 0 ? true : undefined);
/** Every ended attempt of job `id` (an array's tasks by its array id). */
const attempts = (id: string) => finishedJobs(cluster).filter((j) => j.JobId === id || j.ArrayJobId === id);

/** What a single `run` of `dir`'s recipe writes, in a copy of the project: its scores and kept ids. */
async function singleRun(dir: string): Promise<{ scores: string; kept: string[] }> {
  const copy = `${dir}-single`;
  mkdirSync(copy);
  for (const f of ["rows.jsonl", "job.yaml"]) writeFileSync(join(copy, f), readFileSync(join(dir, f)));
  const r = runCli(["run", "--config", join(copy, "job.yaml")]);
  expect(r.status, r.stderr).toBe(0);
  return { scores: join(copy, "out/scores.arrow"), kept: await keptIds(copy) };
}

async function keptIds(dir: string): Promise<string[]> {
  const rows = await parquetReadObjects({ file: await asyncBufferFromFile(join(dir, "out/flexrand-0.3/train.parquet")), columns: ["id"] });
  return rows.map((r) => String(r.id)).sort();
}

/** The merged scores of `dir` equal the single run's: rows and statuses exactly, losses within float tolerance. */
async function expectSameScores(dir: string, single: { scores: string; kept: string[] }): Promise<void> {
  const [a, b] = await Promise.all([readScoresFile(join(dir, "out/scores.arrow")), readScoresFile(single.scores)]);
  expect(Array.from(a.cols.row)).toEqual(Array.from(b.cols.row));
  expect(Array.from(a.cols.status)).toEqual(Array.from(b.cols.status));
  a.cols.losses.forEach((l, i) =>
    Number.isNaN(l) ? expect(b.cols.losses[i]).toBeNaN() : expect(Math.abs(l - b.cols.losses[i]!)).toBeLessThan(1e-5),
  );
  expect(await keptIds(dir)).toEqual(single.kept);
}

describe.skipIf(missing)(`examples/slurm on a real single-node Slurm${missing ? ` (skipped: ${missing})` : ""}`, () => {
  beforeAll(async () => {
    model = await tinyModel();
    cluster = await startCluster(join(tmp, "cluster"));
  }, 120_000);
  afterAll(async () => {
    if (cluster) await stopCluster(cluster);
  }, 60_000);

  it("submit.sh runs every task, then the merge + select, whose outputs equal a single run's; one index resubmitted scores its shard", async () => {
    const dir = project("three", 120, "levels: 3");
    const { array, merge } = submit(dir, 3);
    await waitFor("the jobs to end", 120, idle);
    const tasks = attempts(array);
    expect(tasks.map((t) => [t.ArrayTaskId, t.JobState]).sort()).toEqual([
      ["0", "COMPLETED"],
      ["1", "COMPLETED"],
      ["2", "COMPLETED"],
    ]);
    const [mergeJob] = attempts(merge);
    expect(mergeJob?.JobState).toBe("COMPLETED");
    // The merge waited for the last task.
    expect(
      mergeJob!.StartTime! >=
        tasks
          .map((t) => t.EndTime!)
          .sort()
          .at(-1)!,
    ).toBe(true);
    for (const k of [0, 1, 2]) expect(readFileSync(join(dir, `dlc-score-${array}_${k}.out`), "utf8")).toContain(`shard ${k}/3`);
    await expectSameScores(dir, await singleRun(dir));

    // sbatch --array=1 alone: shard 1 of SHARDS_N (its array says MIN=MAX=1, COUNT=1), never every row.
    rmSync(join(dir, "out/scores.shard-1-of-3.arrow"));
    const merged = statSync(join(dir, "out/scores.arrow")).mtimeMs;
    const again = slurm(cluster, "sbatch", ["--parsable", "--array=1", SCORE_ARRAY], { cwd: dir, env: envFor(dir, 3) })
      .trim()
      .split(";")[0]!;
    await waitFor("the resubmitted task to end", 60, idle);
    expect(attempts(again).map((t) => t.JobState)).toEqual(["COMPLETED"]);
    expect(readFileSync(join(dir, `dlc-score-${again}_1.out`), "utf8")).toContain("shard 1/3");
    expect(existsSync(join(dir, "out/scores.shard-1-of-3.arrow"))).toBe(true);
    expect(statSync(join(dir, "out/scores.arrow")).mtimeMs).toBe(merged);
  }, 300_000);

  it("a cancelled task saves and exits 130; the merge is cancelled, not left pending; requeued, the task resumes and a new merge gives the single run's outputs", async () => {
    const dir = project("requeue", 900, "levels: 12");
    const { array, merge } = submit(dir, 2);
    const log = join(dir, `dlc-score-${array}_1.out`);
    // Cancelled while it scores (level 2 of 12 under way), not before it starts or after it ends.
    await waitFor("task 1 to reach level 2", 120, () =>
      existsSync(log) && readFileSync(log, "utf8").includes("level 2/12") ? true : undefined,
    );
    slurm(cluster, "scancel", [`${array}_1`]);
    await waitFor("the jobs to end", 120, idle);
    const cancelled = attempts(array).find((t) => t.ArrayTaskId === "1")!;
    expect(cancelled.JobState).toBe("CANCELLED");
    expect(readFileSync(log, "utf8")).toContain("interrupted: rerun the same command to resume"); // SIGTERM reached dlc-prune
    expect(slurm(cluster, "scontrol", ["show", "job", "-o", `${array}_1`])).toContain("ExitCode=130:0");
    expect(attempts(merge).map((j) => j.JobState)).toEqual(["CANCELLED"]); // --kill-on-invalid-dep
    const firstAttempt = readFileSync(log, "utf8");

    slurm(cluster, "scontrol", ["requeue", `${array}_1`]);
    // jobcomp records a requeue as an attempt ended PENDING; then the new attempt's end.
    const task1 = () => attempts(array).filter((t) => t.ArrayTaskId === "1" && t.JobState !== "PENDING");
    await waitFor("the requeued task to end", 120, () => (task1().length === 2 && idle() ? true : undefined));
    expect(task1().map((t) => t.JobState)).toEqual(["CANCELLED", "COMPLETED"]);
    const both = readFileSync(log, "utf8");
    expect(both.startsWith(firstAttempt)).toBe(true); // --open-mode=append
    expect(both.slice(firstAttempt.length)).toMatch(/resum/i);

    const again = slurm(cluster, "sbatch", ["--parsable", MERGE], { cwd: dir, env: envFor(dir, 2) })
      .trim()
      .split(";")[0]!;
    await waitFor("the merge to end", 120, idle);
    expect(attempts(again).map((j) => j.JobState)).toEqual(["COMPLETED"]);
    await expectSameScores(dir, await singleRun(dir));
  }, 400_000);
});
