// Nothing silent on real runs: every summary counts ok, truncated and each unscored reason; what a rerun
// removes is said; the manifest is readable from anywhere and says how it was made; one writer at a time.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/contract/file.js";
import type { Report } from "../../src/report/report.js";
import type { Manifest } from "../../src/contract/manifest.js";
import { runCli } from "../helpers/cli.js";
import { tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
let model: string;

/** 12 short rows; rows 2, 5 and 8 have long responses that 150 tokens cannot hold; row 10 has none. */
function rows(): Record<string, unknown>[] {
  return Array.from({ length: 12 }, (_, i) => ({
    id: `r${i}`,
    instruction: `Say something about the city, number ${i}.`,
    input: "",
    output:
      i === 10
        ? ""
        : [2, 5, 8].includes(i)
          ? "The people of the small city like the plan for water. ".repeat(6)
          : `The city has water, ${i}.`,
  }));
}

beforeAll(async () => {
  model = await tinyModel();
  writeJsonl(join(tmp, "d.jsonl"), rows());
});

const readJson = <T>(path: string) => JSON.parse(readFileSync(path, "utf8")) as T;

describe("truncation is counted everywhere", () => {
  it("in the score log, the scores file, the manifest (all rows and per ratio) and the report", async () => {
    const r = runCli(
      [
        "run",
        "--config",
        "/dev/null",
        "--set",
        "data.path=d.jsonl",
        "--set",
        `model.path=${model}`,
        "--set",
        "score.max_tokens=150",
        "--set",
        "score.out=o1/s.arrow",
        "--set",
        "select.out_dir=o1",
        "--set",
        "select.ratios=[0.5,1]",
      ],
      { cwd: tmp },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("12 rows (alpaca, template alpaca, max_tokens 150): 8 ok, 3 truncated; 1 unscored (1 empty-response)");
    expect(r.stderr).toMatch(/wrote o1\/s\.arrow: 12 rows, 8 ok, 3 truncated; 1 unscored \(1 empty-response\)/);
    expect(r.stderr).toMatch(
      /o1\/flexrand-1\/train\.parquet: 11 rows kept \(8 ok, 3 truncated\), 0 pruned, 0 excluded, 1 unscored \(drop\)/,
    );
    const { cols } = await readScoresFile(join(tmp, "o1/s.arrow"));
    expect(cols.status.filter((s) => s === "truncated")).toHaveLength(3);
    const manifest = readJson<Manifest>(join(tmp, "o1/manifest.json"));
    expect(manifest.rows).toEqual({ total: 12, by_status: { ok: 8, truncated: 3, "empty-response": 1 } });
    for (const o of manifest.outputs) expect(Object.values(o.kept_by_status).reduce((a, b) => a + b, 0)).toBe(o.rows.kept);
    expect(manifest.outputs.find((o) => o.ratio === 1)!.kept_by_status).toEqual({ ok: 8, truncated: 3 });
    const report = readJson<Report>(join(tmp, "o1/report.json"));
    expect(report.runs[0]!.by_status).toEqual(manifest.rows.by_status);
    expect(report.outputs.map((x) => x.kept_by_status)).toEqual(manifest.outputs.map((o) => o.kept_by_status));
    expect(report.outputs.map((x) => x.truncated_kept)).toEqual(manifest.outputs.map((o) => o.kept_by_status.truncated ?? 0));
    expect(readFileSync(join(tmp, "o1/report.html"), "utf8")).toContain("8 ok, 3 truncated, 1 empty-response");
  });

  it("score.truncated: drop makes such rows unscored (too-long) instead", async () => {
    const r = runCli(
      ["score", "--data", "d.jsonl", "--model", model, "--max-tokens", "150", "--out", "drop.arrow", "--set", "score.truncated=drop"],
      { cwd: tmp },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("8 ok, 0 truncated; 4 unscored (3 too-long, 1 empty-response)");
    const { cols } = await readScoresFile(join(tmp, "drop.arrow"));
    expect([2, 5, 8].map((i) => cols.status[i])).toEqual(["too-long", "too-long", "too-long"]);
    expect([2, 5, 8].every((i) => Number.isNaN(cols.dlc[i]!))).toBe(true);
  });
});

describe("reruns and folders", () => {
  it("a rerun with other ratios names each earlier output it removes", () => {
    const base = [
      "run",
      "--config",
      "/dev/null",
      "--set",
      "data.path=d.jsonl",
      "--set",
      `model.path=${model}`,
      "--set",
      "score.out=o2/s.arrow",
      "--set",
      "select.out_dir=o2",
    ];
    expect(runCli([...base, "--set", "select.ratios=[0.3,0.5]"], { cwd: tmp }).status).toBe(0);
    const again = runCli([...base, "--set", "select.ratios=[0.2]"], { cwd: tmp });
    expect(again.status, again.stderr).toBe(0);
    for (const f of ["flexrand-0.3/train.parquet", "flexrand-0.5/train.parquet"])
      expect(again.stderr).toContain(`removed o2/${f}: an output of an earlier run that this run does not write`);
    // The emptied folders of those ratios go too.
    expect(readdirSync(join(tmp, "o2")).filter((f) => f.startsWith("flexrand-"))).toEqual(["flexrand-0.2"]);
  });

  it("the manifest stores paths relative to itself, so report works from anywhere and after a move", () => {
    mkdirSync(join(tmp, "proj/configs"), { recursive: true });
    writeJsonl(join(tmp, "proj/data.jsonl"), rows());
    writeFileSync(
      join(tmp, "proj/configs/r.yaml"),
      `data: {path: ../data.jsonl}\nmodel: {path: ${model}}\nscore: {out: ../out/s.arrow}\nselect: {out_dir: ../out, ratios: [0.5]}\n`,
    );
    const r = runCli(["run", "--config", "configs/r.yaml"], { cwd: join(tmp, "proj") });
    expect(r.status, r.stderr).toBe(0);
    const manifest = readJson<Manifest>(join(tmp, "proj/out/manifest.json"));
    expect([
      manifest.config.data.path,
      manifest.config.score.out,
      manifest.config.select.out_dir,
      manifest.scores.path,
      manifest.run.data.path,
    ]).toEqual(["../data.jsonl", "s.arrow", ".", "s.arrow", "../data.jsonl"]);
    expect(manifest.invocation).toEqual({ command: ["run", "--config", "configs/r.yaml"], threads: availableParallelism() });
    expect(manifest.run.environment).toMatchObject({ node: process.version, onnxruntime: "1.30.0" });
    expect(Object.keys(manifest.run.model.sha256).sort()).toEqual(["onnx/model.onnx", "tokenizer.json", "tokenizer_config.json"]);
    expect(Object.keys(manifest.timings)).toEqual(["inspect", "score", "select_write", "report"]);
    // From another working directory, and with the project moved.
    const report = runCli(["report", "--out-dir", join(tmp, "proj/out")], { cwd: "/" });
    expect(report.status, report.stderr).toBe(0);
    renameSync(join(tmp, "proj"), join(tmp, "moved"));
    const moved = runCli(["report", "--out-dir", "out"], { cwd: join(tmp, "moved") });
    expect(moved.status, moved.stderr).toBe(0);
  });

  it("one writer at a time: a live lock refuses a second run, a dead one is taken over; stale temporary files go", () => {
    const base = [
      "run",
      "--config",
      "/dev/null",
      "--set",
      "data.path=d.jsonl",
      "--set",
      `model.path=${model}`,
      "--set",
      "score.out=o3/s.arrow",
      "--set",
      "select.out_dir=o3",
      "--set",
      "select.ratios=[0.5]",
    ];
    mkdirSync(join(tmp, "o3"));
    // A lock held by a live process (this test's), then by one that is gone.
    writeFileSync(join(tmp, "o3/.dlc-prune.lock"), JSON.stringify({ pid: process.pid, host: hostname(), since: "2026-01-01T00:00:00Z" }));
    const refused = runCli(base, { cwd: tmp });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(
      `select.out_dir o3: another dlc-prune (pid ${process.pid} on ${hostname()}, since 2026-01-01T00:00:00Z) is writing it`,
    );
    writeFileSync(join(tmp, "o3/.dlc-prune.lock"), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), since: "2026-01-01T00:00:00Z" }));
    writeFileSync(join(tmp, "o3/s.arrow.lock"), JSON.stringify({ pid: process.pid, host: hostname(), since: "2026-01-01T00:00:00Z" }));
    const scoresLocked = runCli(base, { cwd: tmp });
    expect(scoresLocked.stderr).toContain("score.out o3/s.arrow: another dlc-prune");
    writeFileSync(join(tmp, "o3/s.arrow.lock"), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), since: "2026-01-01T00:00:00Z" }));
    mkdirSync(join(tmp, "o3/flexrand-0.5"));
    writeFileSync(join(tmp, "o3/flexrand-0.5/.train.parquet.tmp-99999-0123abcd"), "half a file");
    const ok = runCli(base, { cwd: tmp });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).toContain("removed 1 temporary file an interrupted run left in o3 (flexrand-0.5/.train.parquet.tmp-99999-0123abcd)");
    expect(readdirSync(join(tmp, "o3")).sort()).toEqual([
      "flexrand-0.5",
      "manifest.json",
      "report.html",
      "report.json",
      "s.arrow",
      "unscored.jsonl",
    ]);
    expect(readdirSync(join(tmp, "o3/flexrand-0.5"))).toEqual(["train.parquet"]);
    expect(existsSync(join(tmp, "o3/.dlc-prune.lock"))).toBe(false);
  });

  it("levels past the point where the mask stops growing are refused, saying how many change it", () => {
    const r = runCli(["score", "--data", "d.jsonl", "--model", model, "--out", "lv.arrow", "--levels", "1000"], { cwd: tmp });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(
      /^dlc-prune: error: score\.levels 1000: from level (\d+) on the mask no longer grows .*would repeat level \d+: use at most \d+ levels$/,
    );
    const most = Number(/use at most (\d+) levels/.exec(r.stderr)![1]);
    expect(
      runCli(["score", "--data", "d.jsonl", "--model", model, "--out", "lv.arrow", "--levels", String(most)], { cwd: tmp }).status,
    ).toBe(0);
  });
});
