// Progress on a terminal and in logs: the bar never garbles a log line, the ETA is the whole job's with a
// unit, levels count from 1, and stopping restores the terminal (cursor shown, line wrap on). The ETA itself
// (src/score/levels.ts ProgressMeter) is checked with a clock the test drives.
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { formatDuration, scoreProgress } from "../../src/cli/progress.js";
import { ProgressMeter, type LevelProgress } from "../../src/score/levels.js";
import { passesOf, type PassLayout } from "../../src/score/plan.js";
import { runCli } from "../helpers/cli.js";
import { alpacaRows, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

/** A stream that says it is a terminal and keeps what is written. */
function fakeTerminal(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as unknown as NodeJS.WriteStream & { text: () => string };
  Object.assign(stream, { isTTY, columns: 120, text: () => chunks.join("") });
  return stream;
}

const at = (level: number, rowsDone: number, etaSeconds: number | null): LevelProgress => ({
  phase: "score",
  level,
  levels: 3,
  alone: false,
  rows: "all",
  rowsDone,
  rowsTotal: 10,
  tokensDone: 0,
  tokensTotal: 0,
  rate: 1234.4,
  etaSeconds,
});

describe("the progress display", () => {
  it("formats durations with units", () => {
    expect([9.4, 100, 3725, null].map(formatDuration)).toEqual(["9s", "1m40s", "1h02m", "?"]);
  });

  it("on a terminal: levels from 1, the job's ETA with a unit, log lines on lines of their own, the terminal restored", () => {
    const term = fakeTerminal(true);
    const progress = scoreProgress(term, () => 0);
    progress.update(at(0, 4, 100));
    progress.log("a line in the middle of a level");
    progress.update(at(0, 10, 60));
    progress.update(at(1, 2, 3725));
    progress.stop();
    progress.log("wrote out/scores.arrow");
    const out = term.text();
    const plain = out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, "");
    expect(plain).toContain("level 1/3");
    expect(plain).toContain("level 2/3");
    expect(plain).not.toContain("level 0/3");
    expect(plain).toMatch(/ETA 1m40s/);
    expect(plain).toMatch(/ETA 1h02m/);
    expect(plain).not.toMatch(/ETA \d+(?![\dmsh])/); // never a number without a unit
    // Every log line starts a line: what precedes it is a line end.
    for (const line of ["a line in the middle of a level", "wrote out/scores.arrow"]) {
      const i = out.indexOf(line);
      expect(out[i - 1], JSON.stringify(out.slice(Math.max(0, i - 40), i))).toBe("\n");
    }
    // The cursor is shown and line wrap on again after the last time they were turned off.
    expect(out.lastIndexOf("\x1b[?25h")).toBeGreaterThan(out.lastIndexOf("\x1b[?25l"));
    expect(out.lastIndexOf("\x1b[?7h")).toBeGreaterThan(out.lastIndexOf("\x1b[?7l"));
  });

  it("in a log: a line per level end and every 10 seconds, with the job's ETA", () => {
    const term = fakeTerminal(false);
    let t = 0;
    const progress = scoreProgress(term, () => t);
    progress.update(at(0, 2, 95));
    t = 5;
    progress.update(at(0, 4, 80)); // within 10 s: no line
    t = 11;
    progress.update(at(0, 6, 70));
    progress.update(at(0, 10, 50));
    expect(term.text().trim().split("\n")).toEqual([
      "level 1/3: 2/10 rows, 1234 tok/s, ETA 1m35s",
      "level 1/3: 6/10 rows, 1234 tok/s, ETA 1m10s",
      "level 1/3: 10/10 rows, 1234 tok/s, ETA 50s",
    ]);
  });
});

describe("the ETA", () => {
  /** Three batches of 100, 60 and 40 tokens, three levels over all rows. */
  const full: PassLayout = {
    members: [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
    lengths: [50, 30, 20],
    batchTokens: [100, 60, 40],
    tokens: 200,
    rows: 6,
  };
  const passes = passesOf(3, false, false);
  const layouts = () => passes.map(() => full);

  it("is the token rate of the passes (masking and sessions apart) until a level has run, then that level's time per batch", () => {
    let t = 0;
    const seen: LevelProgress[] = [];
    const meter = new ProgressMeter(
      layouts(),
      passes,
      full,
      { pass: 0, nextBatch: 0 },
      (p) => seen.push(p as LevelProgress),
      () => t,
    );
    // Level 1: 2 s of masking and session, then batches of 5, 2 and 1 s.
    meter.passStarted(0, 2, full);
    for (const [b, s] of [5, 2, 1].entries()) {
      t += s;
      meter.batchDone(b);
    }
    // After the first batch: 100 tokens in 5 s of pass = 20 tok/s; 500 tokens left = 25 s, + 2 levels x 2 s.
    expect(seen[0]!.rate).toBe(20);
    expect(seen[0]!.etaSeconds).toBe(25 + 4);
    meter.passDone();
    // Level 2, batch 1 done: the rest of this level by level 1's curve (8 - 5 = 3 s), then level 3 (2 + 8 s).
    t += 2;
    meter.passStarted(1, 2, full);
    t += 5;
    meter.batchDone(0);
    expect(seen.at(-1)!.etaSeconds).toBe(3 + 10);
    expect(seen.at(-1)!.level).toBe(1);
  });

  it("after a resume part-way through a level, counts the work done before", () => {
    const seen: LevelProgress[] = [];
    const meter = new ProgressMeter(
      layouts(),
      passes,
      full,
      { pass: 1, nextBatch: 1 },
      (p) => seen.push(p as LevelProgress),
      () => 0,
    );
    meter.passStarted(1, 0, full);
    meter.batchDone(1);
    expect(seen[0]).toMatchObject({ tokensDone: 200 + 100 + 60, tokensTotal: 600, rowsDone: 4, rowsTotal: 6 });
  });
});

describe("progress from the first second", () => {
  it("run says what it loads, then the tokenizer's progress, before any summary", async () => {
    const tmp = tempDir();
    const model = await tinyModel();
    const data = writeJsonl(join(tmp, "d.jsonl"), alpacaRows(30));
    const r = runCli([
      "run",
      "--config",
      "/dev/null",
      "--set",
      `data.path=${data}`,
      "--set",
      `model.path=${model}`,
      "--set",
      `score.out=${join(tmp, "o/s.arrow")}`,
      "--set",
      `select.out_dir=${join(tmp, "o")}`,
      "--set",
      "score.levels=1",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.split("\n");
    expect(lines.slice(0, 2)).toEqual([`loading the model ${model} and tokenizing ${data}`, "tokenizing..."]);
    expect(lines[2]).toMatch(/^30 rows \(alpaca/);
  });
});
