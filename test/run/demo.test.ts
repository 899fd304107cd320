// The README's main job, `dlc-prune run --config configs/demo.yaml`, in a fresh folder: it builds the tiny
// model on first use and produces the Parquet files, manifest and report; the report opens in Chromium.
import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tableFromIPC } from "apache-arrow";
import { beforeAll, describe, expect, it } from "vitest";
import { readScoresFile } from "../../src/scores/file.js";
import type { Report } from "../../src/report/report.js";
import type { Manifest } from "../../src/write/layout.js";
import { runCli } from "../helpers/cli.js";
import { hasChromium, openInChromium, CHROMIUM } from "../helpers/chromium.js";
import { readParquetRows } from "../helpers/duckdb.js";
import { manifestWithoutTimings } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const work = tempDir();
let first: ReturnType<typeof runCli>;

beforeAll(() => {
  for (const d of ["configs", "datasets"]) cpSync(join(ROOT, d), join(work, d), { recursive: true });
  first = runCli(["run", "--config", "configs/demo.yaml"], { cwd: work });
});

describe("dlc-prune run --config configs/demo.yaml", () => {
  it("builds the tiny model, says its scores are meaningless, and writes every output", () => {
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain("random weights: its DLC scores are meaningless");
    expect(existsSync(join(work, ".cache/models/demo-tiny/onnx/model.onnx"))).toBe(true);
    expect(readdirSync(join(work, "out/demo")).sort()).toEqual(["keep-0.1.parquet", "keep-0.3.parquet", "keep-0.5.parquet", "manifest.json", "report.html", "report.json", "scores.arrow", "unscored.jsonl"]);
  });

  it("its manifest and report agree with the scores and the Parquet files", async () => {
    const dir = join(work, "out/demo");
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Report;
    const { cols, meta } = await readScoresFile(join(dir, "scores.arrow"));
    const scored = Array.from(cols.dlc).filter((v) => !Number.isNaN(v)).length;
    expect(manifest.run.data.rows).toBe(87);
    expect(report.data).toMatchObject({ rows: 87, scored, unscored: 87 - scored });
    for (let k = 0; k < meta.masking.levels; k++) {
      let sum = 0;
      cols.dlc.forEach((d, r) => (sum += Number.isNaN(d) ? 0 : cols.losses[r * meta.masking.levels + k]!));
      expect(report.masking.mean_loss[k]).toBeCloseTo(sum / scored, 9);
    }
    expect(report.histograms.dlc.series.all!.reduce((a, b) => a + b, 0)).toBe(scored);
    for (const [i, o] of manifest.outputs.entries()) {
      const rows = await readParquetRows(join(dir, o.file));
      expect(rows).toHaveLength(o.rows.kept);
      expect(report.ratios[i]).toMatchObject({ ratio: o.ratio, rows_kept: o.rows.kept, tokens_kept: o.response_tokens.kept });
      expect(report.histograms.dlc.series[`keep ${o.ratio}`]!.reduce((a, b) => a + b, 0)).toBe(o.rows.kept);
      // Composition counts by category sum to the rows kept.
      expect(Object.values(report.groups!.counts[`keep ${o.ratio}`]!).reduce((a, b) => a + b, 0)).toBe(o.rows.kept);
      const tokens = rows.reduce((a, r) => a + cols.tokens[Number((r.id as string).slice(5))]!, 0);
      expect(tokens).toBe(o.response_tokens.kept);
    }
  });

  it("keeps the demo's values of dlc-prune 0.1.0: scores columns and keep-*.parquet bytes (pinned before the restructuring)", async () => {
    const dir = join(work, "out/demo");
    const sha = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
    expect(Object.fromEntries(["0.1", "0.3", "0.5"].map((r) => [r, sha(readFileSync(join(dir, `keep-${r}.parquet`)))]))).toEqual({
      "0.1": "afefc544cc559f1e2531769eac449f2b68e8630c4dfe874f817008dd35f63141",
      "0.3": "7a7a45a49cef0d2adf666cb15a48381e1197f1ffe31732ce03c4e56a3cb2f2d2",
      "0.5": "207fda12f7417cc4feddba8ae541c09dd1d0ee1478c69b2c1fbc8a5d8d426931",
    });
    // The columns as plain JSON (row, id, dlc, losses as float32 values, tokens, status), as read by apache-arrow.
    const table = tableFromIPC(readFileSync(join(dir, "scores.arrow")));
    const columns = Object.fromEntries(
      table.schema.fields.map((f) => [f.name, [...table.getChild(f.name)!].map((v) => (v === null ? null : typeof v === "bigint" ? Number(v) : typeof v === "object" ? Array.from((v as { toArray(): Float32Array }).toArray()) : v))]),
    );
    expect(Object.keys(columns)).toEqual(["row", "id", "dlc", "losses", "tokens", "status"]);
    expect(sha(JSON.stringify(columns))).toBe("d019bf3f1fbfc0bafffbdbf48e80bf92ffd20ee4eb86cb24c0cfe9b7ff97e668");
  });

  it("a second run reuses the scores and rewrites identical outputs", () => {
    const dir = join(work, "out/demo");
    const before = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    const again = runCli(["run", "--config", "configs/demo.yaml"], { cwd: work });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain("is up to date");
    for (const [f, bytes] of Object.entries(before)) if (f !== "manifest.json") expect(readFileSync(join(dir, f)).equals(bytes), f).toBe(true);
    const { timings: _timings, ...manifestBefore } = JSON.parse(before["manifest.json"]!.toString("utf8")) as Record<string, unknown>;
    expect(manifestWithoutTimings(join(dir, "manifest.json"))).toEqual(manifestBefore);
  });

  it("any key can be overridden from the command line, and bad keys are named", () => {
    const r = runCli(["run", "--config", "configs/demo.yaml", "--set", "select.ratios=[0.2]", "--set", "select.out_dir=out/other"], { cwd: work });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(join(work, "out/other")).filter((f) => f.endsWith(".parquet"))).toEqual(["keep-0.2.parquet"]);
    const bad = runCli(["run", "--config", "configs/demo.yaml", "--set", "score.levles=4"], { cwd: work });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("configs/demo.yaml: unknown key score.levles");
  });

  (hasChromium ? it : it.skip)(`the report opens in headless Chromium without errors${hasChromium ? "" : ` [skipped: no Chromium at ${CHROMIUM}; .ci/run installs Debian's chromium]`}`, async () => {
    const page = await openInChromium(join(work, "out/demo/report.html"));
    expect(page.errors).toEqual([]);
    expect(page.title).toBe("dlc-prune report");
    expect(page.svgs).toBeGreaterThanOrEqual(5); // DLC, tokens, characters, composition, masking path
  });
});
