// Races (issue 20, points 3 and 6). A file the user writes into the output folder while a run publishes is
// never replaced or removed, even when written after every check but the last: the interleaving is made
// deterministic by holding the run at the very system call that would replace or remove it (strace's
// delay injection) and writing the user's bytes meanwhile. And two runs that find the same stale lock never
// both take it over.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { CLI, runCli } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-races-");
const DIST_LOCK = fileURLToPath(new URL("../../dist/util/lock.js", import.meta.url));

/** strace with fault injection, and ptrace allowed here (a container may forbid it). */
const strace = spawnSync("strace", ["-f", "-qq", "-o", "/dev/null", "-e", "inject=getpid:delay_enter=1", "true"]).status === 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A recipe in `dir` (paths relative to it) scoring once and selecting `ratio` into out/. */
function recipe(dir: string, model: string, ratio: number): string {
  const doc = {
    data: { path: "d.jsonl" },
    model: { path: model },
    score: { out: "scores.arrow", levels: 1, batch_tokens: 128 },
    select: { ratios: [ratio], out_dir: "out" },
  };
  writeFileSync(join(dir, `r${ratio}.yaml`), YAML.stringify(doc));
  return `r${ratio}.yaml`;
}

describe.skipIf(!strace)("3: a file the user writes while a run publishes is never replaced or removed", () => {
  let model: string;
  /** A folder with a finished run at ratio 0.3 (scores beside out/). */
  let start: string;

  beforeAll(async () => {
    model = await tinyModel();
    start = join(tmp, "start");
    mkdirSync(start);
    writeJsonl(join(start, "d.jsonl"), alpacaRows(12));
    const r = runCli(["run", "--config", recipe(start, model, 0.3)], { cwd: start });
    expect(r.status, r.stderr).toBe(0);
    recipe(start, model, 0.5);
  });

  /**
   * `select` at ratio 0.5 in a copy of the start, held for 3 s at its first rename or unlink of `target`
   * (a path relative to the case folder, as the run names it); 1 s into that, the user writes `mine` there.
   */
  async function userWritesDuring(
    name: string,
    target: string,
    mine: string,
  ): Promise<{ status: number | null; stderr: string; dir: string }> {
    const dir = join(tmp, name);
    cpSync(start, dir, { recursive: true });
    const args = [
      "-f",
      "-qq",
      "-o",
      "/dev/null",
      "-P",
      target,
      "-e",
      "trace=rename,unlink",
      "-e",
      "inject=rename,unlink:delay_enter=3000000:when=1",
    ];
    const child = spawn("strace", [...args, process.execPath, CLI, "select", "--config", "r0.5.yaml"], {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += String(chunk)));
    const done = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // The publishing manifest is written just before the renames and removals.
    const manifest = join(dir, "out/manifest.json");
    for (let t = 0; t < 600 && !readFileSync(manifest, "utf8").includes('"state": "publishing"'); t++) await sleep(25);
    expect(readFileSync(manifest, "utf8")).toContain('"state": "publishing"');
    await sleep(1000);
    writeFileSync(join(dir, target), mine);
    return { status: await done, stderr, dir };
  }

  it("an earlier output to be removed, rewritten by the user: kept, and the run stops saying so", async () => {
    const target = "out/flexrand-0.3/train.parquet";
    const { status, stderr, dir } = await userWritesDuring("stale", target, "my own rows");
    expect(status, stderr).toBe(1);
    expect(stderr).toContain(
      `dlc-prune: error: select.out_dir out: flexrand-0.3/train.parquet changed while this run published its outputs`,
    );
    expect(readFileSync(join(dir, target), "utf8")).toBe("my own rows");
    expect(stderr).not.toMatch(/removed out\/flexrand-0\.3/);
    // The folder is consistent: the next run refuses the changed file, and leaves it.
    const again = runCli(["select", "--config", "r0.5.yaml"], { cwd: dir });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("flexrand-0.3/train.parquet changed since dlc-prune wrote it");
    expect(readFileSync(join(dir, target), "utf8")).toBe("my own rows");
  });

  it("an output to be replaced, rewritten by the user: kept, and the run stops saying so", async () => {
    const target = "out/unscored.jsonl";
    const { status, stderr, dir } = await userWritesDuring("replaced", target, "my notes\n");
    expect(status, stderr).toBe(1);
    expect(stderr).toContain("dlc-prune: error: select.out_dir out: unscored.jsonl changed while this run published its outputs");
    expect(readFileSync(join(dir, target), "utf8")).toBe("my notes\n");
    expect(existsSync(join(dir, "out/flexrand-0.3/train.parquet"))).toBe(true); // removals come after the replacements
  });
});

/**
 * Two processes, started together, each trying `rounds` locks that a dead process holds, one round every
 * `period` ms (both wait for the same instant): what each got, per round.
 */
async function race(dir: string, rounds: number, period: number): Promise<string[][]> {
  const script = `
    import { Lock } from ${JSON.stringify(DIST_LOCK)};
    const [dir, rounds, start, period] = process.argv.slice(1); // node -e: no script path
    const got = [];
    for (let r = 0; r < Number(rounds); r++) {
      while (Date.now() < Number(start) + r * Number(period));
      try {
        await Lock.acquire(dir + "/lock-" + r, "race");
        got.push("held");
      } catch (err) {
        got.push(err.name === "UserError" && /another dlc-prune \\(pid \\d+/.test(err.message) ? "refused" : String(err.message));
      }
    }
    process.stdout.write(JSON.stringify(got));
  `;
  const start = Date.now() + 1500;
  const children = [0, 1].map(() =>
    spawn(process.execPath, ["--input-type=module", "-e", script, dir, String(rounds), String(start), String(period)], {
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  return Promise.all(
    children.map(
      (child) =>
        new Promise<string[]>((resolve) => {
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => (out += String(chunk)));
          child.on("exit", (code) => resolve(code === 0 ? (JSON.parse(out) as string[]) : [`exit ${code}`]));
        }),
    ),
  );
}

describe("6: a stale lock is taken over by one run only", () => {
  it("two processes racing for 80 stale locks: exactly one holds each, and its lock is the one on disk", async () => {
    expect(existsSync(DIST_LOCK), "dist/ is built by npm test's pretest").toBe(true);
    const dir = join(tmp, "locks");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    const rounds = 80;
    for (let r = 0; r < rounds; r++)
      writeFileSync(join(dir, `lock-${r}`), JSON.stringify({ pid: dead, host: hostname(), since: "2020-01-01T00:00:00.000Z" }));
    const [a, b] = await race(dir, rounds, 25);
    const both = [];
    for (let r = 0; r < rounds; r++) {
      expect([a![r], b![r]].sort(), `round ${r}`).toEqual(["held", "refused"]);
      if (a![r] === "held" && b![r] === "held") both.push(r);
    }
    expect(both).toEqual([]);
    // Each round's lock names a live run's process then: never the dead one, never missing.
    for (let r = 0; r < rounds; r++) expect(JSON.parse(readFileSync(join(dir, `lock-${r}`), "utf8")).pid).not.toBe(dead);
  });
});
