// kill -9 at every step that changes what is on disk (issue 20, point 5): each command is run once under
// strace to count its renames, unlinks, links and rmdirs, then once per call, killed (SIGKILL, injected by
// strace as the call begins, so the call never happens) from a fresh copy of the same starting folder; the
// same command run again must succeed and leave exactly the files of an uninterrupted run, byte for byte
// (the manifest but for its timings): no temporary file, lock, work folder or empty folder left, no output
// missing, nothing that makes every later run fail.
//
// Cost: two CLI processes per call. `run` (from an empty folder) and `select` (over a folder with another
// ratio's outputs: every output replaced or removed) are killed at every call; `report`, `merge`, `compare`
// and `score` at a sample of their calls (the publishing steps, the scores file's rename) unless
// DLC_PRUNE_CRASH_POINTS=all, which kills every command at every call (a few minutes).
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { CLI, runCli, type CliResult } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-crash-");
const ALL = process.env.DLC_PRUNE_CRASH_POINTS === "all";

/** The calls that change the folder tree. A regex, so that it holds on architectures without rename(2) (renameat only). */
const CALLS = "/^(rename|renameat|renameat2|unlink|unlinkat|link|linkat|rmdir)$";

/** strace with fault injection, and ptrace allowed here (a container may forbid it). */
const strace = spawnSync("strace", ["-f", "-qq", "-o", "/dev/null", "-e", "inject=getpid:delay_enter=1", "true"]).status === 0;

/** One libuv worker: each thread counts its own calls for `when=`, so all file calls go through one thread. */
const ENV = { ...process.env, UV_THREADPOOL_SIZE: "1" };

interface KillPoint {
  call: string;
  /** The n-th call of that name, counted from 1. */
  n: number;
  /** What it was in the counting run: `rename("out/.manifest.json.tmp-…", "out/manifest.json")`. */
  what: string;
}

function cli(args: string[], cwd: string): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: ENV, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The calls `args` makes from the folder `start` (copied to `work`), in order, each with its number among the calls of its name. */
function countCalls(start: string, work: string, args: string[]): KillPoint[] {
  reset(start, work);
  const trace = join(tmp, "trace.txt");
  // --seccomp-bpf: stopped at the traced calls only (faster); strace 6.1 then injects no signal, so counting alone uses it.
  const r = spawnSync("strace", ["--seccomp-bpf", "-f", "-qq", "-o", trace, "-e", `trace=${CALLS}`, process.execPath, CLI, ...args], {
    cwd: work,
    env: ENV,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  const seen = new Map<string, number>();
  const lines = readFileSync(trace, "utf8").split("\n").filter(Boolean);
  const threads = new Set(lines.map((l) => l.split(/\s+/)[0]));
  expect(threads.size, "all file calls on one thread (UV_THREADPOOL_SIZE=1)").toBe(1);
  return lines.map((line) => {
    const call = /^\d+\s+(\w+)\(/.exec(line)![1]!;
    seen.set(call, (seen.get(call) ?? 0) + 1);
    return { call, n: seen.get(call)!, what: line.replace(/^\d+\s+/, "") };
  });
}

function reset(start: string, work: string): void {
  rmSync(work, { recursive: true, force: true });
  cpSync(start, work, { recursive: true });
}

/** Every file under `dir` (hidden ones too) with its bytes; a manifest without its timings, folders as such. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const rel = relative(dir, path);
      if (statSync(path).isDirectory()) {
        out[`${rel}/`] = "folder";
        walk(path);
      } else if (name === "manifest.json") {
        const { timings: _timings, ...rest } = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
        out[rel] = JSON.stringify(rest);
      } else out[rel] = readFileSync(path).toString("base64");
    }
  };
  walk(dir);
  return out;
}

/** The line of `stderr` that says what failed. */
const firstError = (stderr: string) => stderr.split("\n").find((l) => /error/.test(l)) ?? stderr.trim().split("\n").at(-1);

/**
 * Kills `args` at each of `points` in a fresh copy of `start`, reruns it and compares the folder with the
 * one an uninterrupted run leaves. Returns the points that failed, with why (empty: all held).
 */
function killAndRerun(start: string, work: string, args: string[], points: KillPoint[], expected: Record<string, string>): string[] {
  const failed: string[] = [];
  for (const p of points) {
    reset(start, work);
    const killed = spawnSync(
      "strace",
      [
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        `trace=${p.call}`,
        "-e",
        `inject=${p.call}:signal=KILL:when=${p.n}`,
        process.execPath,
        CLI,
        ...args,
      ],
      {
        cwd: work,
        env: ENV,
        encoding: "utf8",
      },
    );
    const label = `${args[0]} killed at ${p.call} #${p.n} (${p.what})`;
    if (killed.signal !== "SIGKILL" && killed.status !== 137) {
      failed.push(`${label}: was not killed (exit ${killed.status}): ${firstError(killed.stderr)}`);
      continue;
    }
    const again = cli(args, work);
    if (again.status !== 0) {
      failed.push(`${label}: the rerun failed: ${firstError(again.stderr)}`);
      continue;
    }
    const got = snapshot(work);
    const differ = [...new Set([...Object.keys(got), ...Object.keys(expected)])].filter((k) => got[k] !== expected[k]).sort();
    if (differ.length) failed.push(`${label}: the rerun's files differ from an uninterrupted run's: ${differ.join(", ")}`);
  }
  return failed;
}

/** The uninterrupted run's folder, from a copy of `start`. */
function uninterrupted(start: string, work: string, args: string[]): Record<string, string> {
  reset(start, work);
  const r = cli(args, work);
  expect(r.status, r.stderr).toBe(0);
  return snapshot(work);
}

/** Each command's case: where it starts from, its arguments, and which of its calls the default run kills at. */
interface Case {
  name: string;
  start: string;
  args: string[];
  sample: (points: KillPoint[]) => KillPoint[];
}

const every = (points: KillPoint[]) => points;
/** The renames of published files and manifests (a command's publishing steps), and its last call. */
const publishing = (points: KillPoint[]) =>
  points.filter((p, i) => (p.call.startsWith("rename") && !p.what.includes(".work/")) || i === points.length - 1);

describe.skipIf(!strace)("kill -9 at every rename, unlink, link and rmdir, then the same command again", () => {
  let model: string;
  const cases: Case[] = [];

  beforeAll(async () => {
    model = await tinyModel();
    // A recipe per ratio: one level, a few rows; the scores in the output folder (they may live there).
    const recipe = (dir: string, ratio: number, out = "out") => {
      const doc = {
        data: { path: "../d.jsonl" },
        model: { path: model },
        score: { out: `${out}/scores.arrow`, levels: 1, batch_tokens: 128, block_rows: 4 },
        select: { ratios: [ratio], out_dir: out },
      };
      writeFileSync(join(dir, `r${ratio}.yaml`), YAML.stringify(doc));
    };
    // The starting folders and the one each case runs in are at the same depth, with the data beside them:
    // the manifests' relative paths (to the data, the model) read the same from both.
    const starts = join(tmp, "starts");
    for (const dir of [starts, join(tmp, "w")]) {
      mkdirSync(dir);
      writeJsonl(join(dir, "d.jsonl"), alpacaRows(10));
    }
    const folder = (name: string) => {
      const dir = join(starts, name);
      mkdirSync(dir);
      recipe(dir, 0.3);
      recipe(dir, 0.5);
      return dir;
    };
    const ok = (r: CliResult) => expect(r.status, r.stderr).toBe(0);

    const empty = folder("empty");
    const earlier = folder("earlier");
    ok(runCli(["run", "--config", "r0.3.yaml"], { cwd: earlier }));
    const finished = folder("finished");
    ok(runCli(["run", "--config", "r0.5.yaml"], { cwd: finished }));
    const shards = folder("shards");
    for (const i of [0, 1]) ok(runCli(["score", "--config", "r0.5.yaml", "--shard", `${i}/2`], { cwd: shards }));
    const two = folder("two");
    ok(runCli(["run", "--config", "r0.3.yaml", "--set", "select.out_dir=a", "--set", "score.out=a/scores.arrow"], { cwd: two }));
    ok(runCli(["run", "--config", "r0.5.yaml", "--set", "select.out_dir=b", "--set", "score.out=b/scores.arrow"], { cwd: two }));

    cases.push(
      { name: "run", start: empty, args: ["run", "--config", "r0.5.yaml"], sample: every },
      { name: "select", start: earlier, args: ["select", "--config", "r0.5.yaml"], sample: every },
      { name: "report", start: finished, args: ["report", "--out-dir", "out"], sample: publishing },
      {
        name: "merge",
        start: shards,
        args: ["merge", "--out", "merged.arrow", "out/scores.shard-0-of-2.arrow", "out/scores.shard-1-of-2.arrow"],
        sample: publishing,
      },
      { name: "compare", start: two, args: ["compare", "a", "b", "--out", "c"], sample: publishing },
      // Scoring alone, with a checkpoint after every batch: the scores file's rename comes after the last one.
      // The sample: from the last checkpoint on (a state whose pass is past the last, then the scores file's rename).
      {
        name: "score",
        start: empty,
        args: ["score", "--config", "r0.5.yaml", "--set", "score.checkpoint_seconds=0.001", "--set", "score.levels=2"],
        sample: (ps) => ps.slice(ps.findLastIndex((p) => p.call.startsWith("rename") && p.what.includes('/state.json")'))),
      },
    );
  });

  for (const name of ["run", "select", "report", "merge", "compare", "score"]) {
    it(`${name}: killed at ${name === "run" || name === "select" || ALL ? "every call" : "a sample of its calls"}, the rerun ends as an uninterrupted run`, () => {
      const c = cases.find((k) => k.name === name)!;
      const work = join(tmp, "w", "work");
      const expected = uninterrupted(c.start, work, c.args);
      const points = countCalls(c.start, work, c.args);
      expect(points.length).toBeGreaterThan(3);
      const chosen = ALL ? points : c.sample(points);
      const failed = killAndRerun(c.start, work, c.args, chosen, expected);
      expect(failed, `${failed.length} of ${chosen.length} kill points`).toEqual([]);
    }, 600_000);
  }
});
