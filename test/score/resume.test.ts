// A scoring run killed with SIGKILL mid-pass (the IFD pass of the responses alone, or a masked level) and rerun
// continues from its checkpoint and ends with a scores file byte-identical to an uninterrupted run; a run with
// another config refuses to resume.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import { CLI, runCli } from "../helpers/cli.js";
import { DATASETS_DIR, describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";
import { storiesModel, writeJsonl } from "../helpers/fixtures.js";

const tmp = tempDir();

describeWithShared("resume after kill -9", () => {
  let model: string;
  let data: string;
  const args = (out: string, extra: string[] = []) => [
    "score",
    "--data",
    data,
    "--model",
    model,
    "--out",
    out,
    "--template",
    "alpaca",
    "--max-tokens",
    "192",
    "--batch-tokens",
    "400",
    "--set",
    "score.checkpoint_seconds=0.001",
    "--set",
    "score.ifd=true",
    ...extra,
  ];

  beforeAll(async () => {
    model = await storiesModel();
    const rows = JSON.parse(readFileSync(join(DATASETS_DIR, "alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as unknown[];
    data = join(tmp, "alpaca.jsonl");
    writeJsonl(data, rows.slice(0, 240));
  });

  it("continues to the same bytes as an uninterrupted run", async () => {
    const clean = join(tmp, "clean.arrow");
    const r = runCli(args(clean));
    expect(r.status, r.stderr).toBe(0);

    const out = join(tmp, "killed.arrow");
    const state = join(`${out}.work`, "state.json");
    const child = spawn(process.execPath, [CLI, ...args(out)], { stdio: "ignore" });
    // Passes: 0 the unmasked level, 1 the responses alone (IFD), 2 and 3 the masked levels.
    const killedAt = await new Promise<{ pass: number; nextBatch: number }>((resolve, reject) => {
      const poll = setInterval(() => {
        if (!existsSync(state)) return;
        let s: { pass: number; nextBatch: number };
        try {
          s = JSON.parse(readFileSync(state, "utf8"));
        } catch {
          return; // renamed into place between our exists and read
        }
        if (s.pass >= 1 && s.nextBatch >= 2) {
          clearInterval(poll);
          child.kill("SIGKILL");
          resolve(s);
        }
      }, 5);
      child.on("exit", () => {
        clearInterval(poll);
        reject(new Error("the run finished before it could be killed mid-level"));
      });
    });
    await new Promise((resolve) => child.on("exit", resolve));
    expect(existsSync(out)).toBe(false); // nothing published by the killed run
    expect(killedAt.pass).toBeGreaterThanOrEqual(1);

    // Another config refuses to resume, naming what differs, and leaves the progress alone.
    const other = runCli(args(out, ["--levels", "4"]));
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/different run \(masking\.levels: 3 -> 4\); rerun with --restart/);

    const resumed = runCli(args(out));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* at (the responses alone \(IFD\)|level [23]\/3)/);
    expect(existsSync(`${out}.work`)).toBe(false);
    expect(readFileSync(out).equals(readFileSync(clean))).toBe(true);
    const { cols } = await readScoresFile(out);
    expect(cols.status.filter((s) => s === "ok" || s === "truncated").length).toBeGreaterThan(150);
    expect(Array.from(cols.ifd!).filter((v) => !Number.isNaN(v)).length).toBeGreaterThan(150);

    // --restart starts over and still ends at the same bytes.
    const restarted = runCli(args(out, ["--restart"]));
    expect(restarted.status, restarted.stderr).toBe(0);
    expect(readFileSync(out).equals(readFileSync(clean))).toBe(true);
  });
});
