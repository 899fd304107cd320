// Ctrl-C (SIGINT) while scoring: progress is saved, the CLI says how to resume and exits 130, and rerunning
// the same command ends with exactly the scores of an uninterrupted run.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { CLI, runCli } from "../helpers/cli.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
let args: (out: string) => string[];

beforeAll(async () => {
  const model = await tinyModel();
  const data = writeJsonl(
    join(tmp, "d.jsonl"),
    Array.from({ length: 800 }, (_, i) => ({
      instruction: `Write about the city, ${i}.`,
      input: "",
      output: `The small city has water and a plan, ${i}. `.repeat(1 + (i % 4)),
    })),
  );
  args = (out) => [
    "score",
    "--data",
    data,
    "--model",
    model,
    "--out",
    out,
    "--batch-tokens",
    "256",
    "--threads",
    "1",
    "--set",
    "score.checkpoint_seconds=3600",
  ];
});

it("SIGINT saves progress, says how to resume and exits 130; the rerun ends with the uninterrupted bytes", async () => {
  const clean = join(tmp, "clean.arrow");
  expect(runCli(args(clean)).status).toBe(0);

  const out = join(tmp, "interrupted.arrow");
  const child = spawn(process.execPath, [CLI, ...args(out)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const done = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += String(chunk);
    // The first progress line: scoring has begun.
    if (/level 1\/3: \d+\/\d+ rows/.test(stderr) && !child.killed) child.kill("SIGINT");
  });
  expect(await done, stderr).toBe(130);
  expect(stderr.trim().split("\n").at(-1)).toBe("interrupted: rerun the same command to resume");
  const state = JSON.parse(readFileSync(join(`${out}.work`, "state.json"), "utf8")) as { pass: number; nextBatch: number };
  expect(state.pass).toBe(0);
  expect(state.nextBatch).toBeGreaterThan(0);
  expect(existsSync(out)).toBe(false);

  const resumed = runCli(args(out));
  expect(resumed.status, resumed.stderr).toBe(0);
  expect(resumed.stderr).toContain(`resuming ${out} at level 1/3, batch ${state.nextBatch + 1}/`);
  expect(readFileSync(out).equals(readFileSync(clean))).toBe(true);
});
