// Curation on data of our own with planted junk and duplicates (test/helpers/curation), scored by the real
// stories260K: the duplicate and outlier flags of the scores file, select.exclude, and a report whose warnings
// and decision table say so, each number recomputed here from the Parquet and Arrow files.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import { beforeAll, expect, it } from "vitest";
import type { Manifest } from "../../src/contract/manifest.js";
import type { Report } from "../../src/report/types.js";
import { TOOL_VERSION } from "../../src/version.js";
import { firstScreen, hasChromium, NO_CHROMIUM } from "../helpers/chromium.js";
import { runCli, type CliResult } from "../helpers/cli.js";
import { curationData } from "../helpers/curation.js";
import { readParquetRows } from "../helpers/duckdb.js";
import { storiesModel, writeJsonl } from "../helpers/fixtures.js";
import { describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-curation-");
const planted = curationData();
const N = planted.rows.length;
const SCORES = join(tmp, "scores.arrow");
const SELECTIONS = ["flexrand", "random", "easy", "hard"];
const RATIOS = [0.1, 0.3, 0.5];
const K = 3.5;
let model: string;

/** A recipe over the planted data scoring to SCORES, selecting into `outDir`, with `more` YAML under select. */
function recipe(name: string, outDir: string, more = ""): string {
  const path = join(tmp, name);
  writeFileSync(
    path,
    [
      `data: { path: ${join(tmp, "rows.jsonl")}, fields: { id: id, group: source } }`,
      `model: { path: ${model} }`,
      `score: { out: ${SCORES}, ifd: true, block_rows: 16 }`,
      `select: { ratios: [${RATIOS.join(", ")}], strategies: [${SELECTIONS.join(", ")}], out_dir: ${join(tmp, outDir)}${more} }`,
    ].join("\n") + "\n",
  );
  return path;
}

/** The scores file as apache-arrow reads it: numbers with nulls as NaN, booleans as 0/1. */
function arrowColumns(path: string) {
  const table = tableFromIPC(readFileSync(path));
  const num = (name: string) => Float64Array.from([...table.getChild(name)!], (v) => (v === null ? NaN : Number(v)));
  const bool = (name: string) => [...table.getChild(name)!].map((v): number => (v ? 1 : 0));
  return {
    table,
    id: [...table.getChild("id")!] as string[],
    dlc: num("dlc"),
    loss0: num("loss0"),
    tokens: num("tokens"),
    duplicate: bool("duplicate"),
    duplicateOf: num("duplicate_of"),
    duplicatePairOf: num("duplicate_pair_of"),
    outlier: bool("outlier"),
  };
}

/** The outlier rule as the README states it, written out: |x - median| > k x 1.4826 x MAD, for DLC or loss0. */
function outliersByRule(cols: { dlc: Float64Array; loss0: Float64Array }, k: number): number[] {
  const med = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const rows = [...cols.dlc.keys()].filter((r) => !Number.isNaN(cols.dlc[r]!));
  const flagged = new Set<number>();
  for (const values of [cols.dlc, cols.loss0]) {
    const v = rows.map((r) => values[r]!);
    const m = med(v);
    const mad = med(v.map((x) => Math.abs(x - m)));
    for (const r of rows) if (Math.abs(values[r]! - m) > k * 1.4826 * mad) flagged.add(r);
  }
  return [...flagged].sort((a, b) => a - b);
}

const rowOfId = (id: unknown) => planted.rows.findIndex((r) => r.id === id);
const keptRows = async (dir: string, file: string) => (await readParquetRows(join(dir, file))).map((r) => rowOfId(r.id));
const jaccardOf = (a: number[], b: number[]) => {
  const sb = new Set(b);
  const both = a.filter((x) => sb.has(x)).length;
  return both / (a.length + b.length - both);
};
/** Python's round(): halves to even. */
const pyRound = (x: number) => (Math.abs(x - Math.floor(x) - 0.5) < 1e-12 ? 2 * Math.round(x / 2) : Math.round(x));

let curated: CliResult;
let plain: CliResult;
let compared: CliResult;
const outA = join(tmp, "curated");
const outB = join(tmp, "plain");

describeWithShared("curation: duplicate and outlier flags, select.exclude, and a report that says what to choose (stories260K)", () => {
  beforeAll(async () => {
    writeJsonl(join(tmp, "rows.jsonl"), planted.rows);
    model = await storiesModel();
    curated = runCli(["run", "--config", recipe("curated.yaml", "curated", ", exclude: [duplicates, outliers]")]);
    plain = runCli(["run", "--config", recipe("plain.yaml", "plain")]);
    compared = runCli(["compare", outA, outB, "--out", join(tmp, "compare")]);
  }, 300_000);

  it("flags exactly the planted duplicates: case, spacing and a trailing newline do not hide one", () => {
    expect(curated.status, curated.stderr).toBe(0);
    const cols = arrowColumns(SCORES);
    const want = Array.from({ length: N }, (_, r) => planted.duplicateOf.get(r) ?? NaN);
    expect(Array.from(cols.duplicateOf)).toEqual(want);
    expect(cols.duplicate).toEqual(want.map((v) => (Number.isNaN(v) ? 0 : 1)));
    expect(Array.from(cols.duplicatePairOf)).toEqual(Array.from({ length: N }, (_, r) => planted.pairOf.get(r) ?? NaN));
    const dups = planted.duplicateOf.size;
    expect(curated.stderr).toContain(`flagged ${dups} duplicate responses (${planted.pairOf.size} with the same prompt too)`);
  });

  it("flags as outliers exactly the rows the documented rule names, every garbled answer among them and no fluent story", () => {
    const cols = arrowColumns(SCORES);
    const want = outliersByRule(cols, K);
    expect(cols.outlier.flatMap((v, r) => (v ? [r] : []))).toEqual(want);
    for (const r of planted.garbled) expect(want).toContain(r);
    for (const r of want) expect(planted.rows[r]!.source).not.toBe("fluent");
    expect(curated.stderr).toContain(`, ${want.length} outliers (DLC or loss0 beyond median ± ${K} x 1.4826 x MAD)`);
  });

  it("select.exclude sets the flagged rows aside into excluded.parquet with the reason, one row of each response staying; every row is counted; ratios stay nested", async () => {
    const cols = arrowColumns(SCORES);
    expect(Number.isNaN(cols.dlc[planted.unscored]!)).toBe(true);
    // [duplicates, outliers] in row order: a duplicate goes once a row of its response has stayed.
    const reasons = new Map<number, string>();
    const stayed = new Set<number>();
    for (let r = 0; r < N; r++) {
      if (Number.isNaN(cols.dlc[r]!)) continue;
      const first = cols.duplicate[r] ? cols.duplicateOf[r]! : r;
      if (cols.duplicate[r] && stayed.has(first)) reasons.set(r, "duplicates");
      else if (cols.outlier[r]) reasons.set(r, "outliers");
      else stayed.add(first);
    }
    // The story whose first row is unscored stays: it is the one row of its response that can be kept.
    const lone = planted.rows.findIndex((row) => row.id === "u1");
    expect(cols.duplicate[lone]).toBe(1);
    expect(reasons.has(lone)).toBe(false);
    const excluded = await readParquetRows(join(outA, "excluded.parquet"));
    expect(excluded.map((e) => [rowOfId(e.id), e.excluded_by, e.duplicate_of === null ? null : Number(e.duplicate_of)])).toEqual(
      [...reasons].map(([r, why]) => [r, why, Number.isNaN(cols.duplicateOf[r]!) ? null : cols.duplicateOf[r]]),
    );
    const manifest = JSON.parse(readFileSync(join(outA, "manifest.json"), "utf8")) as Manifest;
    const count = (why: string) => [...reasons.values()].filter((w) => w === why).length;
    expect(manifest.excluded).toEqual({
      file: "excluded.parquet",
      rows: reasons.size,
      by_reason: { duplicates: count("duplicates"), outliers: count("outliers") },
      by_status: { ok: reasons.size, truncated: 0 },
    });
    const pool = N - 1 - reasons.size;
    for (const sel of SELECTIONS) {
      const kept: number[][] = [];
      for (const ratio of RATIOS) {
        const o = manifest.outputs.find((x) => x.selection === sel && x.ratio === ratio)!;
        const rows = await keptRows(outA, o.file);
        kept.push(rows);
        expect(rows.filter((r) => reasons.has(r))).toEqual([]);
        // FlexRand (split 0.5) rounds its easy and hard shares, ratio / 2 each, separately.
        expect(rows).toHaveLength(sel === "flexrand" ? 2 * pyRound((pool * ratio) / 2) : pyRound(pool * ratio));
        expect(o.rows).toEqual({ kept: rows.length, pruned: pool - rows.length, excluded: reasons.size, unscored: 1 });
        expect(o.rows.kept + o.rows.pruned + o.rows.excluded + o.rows.unscored).toBe(N);
        expect(curated.stderr).toContain(
          `${join(outA, o.file)}: ${rows.length} rows kept (${rows.length} ok, 0 truncated), ${pool - rows.length} pruned, ${reasons.size} excluded, 1 unscored (drop)`,
        );
      }
      for (let i = 1; i < kept.length; i++) expect(kept[i]).toEqual(expect.arrayContaining(kept[i - 1]!));
    }
    expect(curated.stderr).toContain(
      `${join(outA, "excluded.parquet")}: ${reasons.size} rows excluded before selection (${count("duplicates")} duplicates, ${count("outliers")} outliers; ${reasons.size} ok, 0 truncated)`,
    );
  });

  it("report.json's decision table, warnings and guidance agree with the Parquet and Arrow files, with select.exclude and without", async () => {
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stderr).toContain("is up to date"); // the same scores, selected again
    const cols = arrowColumns(SCORES);
    const scored = [...cols.dlc.keys()].filter((r) => !Number.isNaN(cols.dlc[r]!));
    const mean = (rows: number[], v: Float64Array) => rows.reduce((a, r) => a + v[r]!, 0) / rows.length;
    const shares = (rows: number[]) => {
      const out: Record<string, number> = {};
      for (const r of rows) out[planted.rows[r]!.source] = (out[planted.rows[r]!.source] ?? 0) + 1 / rows.length;
      return out;
    };
    for (const dir of [outA, outB]) {
      const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Report;
      const run = report.runs[0]!;
      const outliers = cols.outlier.reduce((a, v) => a + v, 0);
      const duplicates = cols.duplicate.reduce((a, v) => a + v, 0);
      const scoredDuplicates = scored.filter((r) => cols.duplicate[r]).length;
      expect(run.flags).toEqual({ duplicates, duplicate_pairs: planted.pairOf.size, outliers, outlier_k: K });
      expect(run.all.duplicates).toBe(scoredDuplicates);
      const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
      expect(run.excluded).toEqual(
        manifest.excluded && {
          rows: manifest.excluded.rows,
          by_reason: manifest.excluded.by_reason,
          by_status: manifest.excluded.by_status,
        },
      );
      expect(run.excluded === null).toBe(dir === outB);
      expect(run.all.tokens).toBe(scored.reduce((a, r) => a + cols.tokens[r]!, 0));
      expect(run.all.mean_dlc).toBeCloseTo(mean(scored, cols.dlc), 12);
      expect(run.all.mean_loss0).toBeCloseTo(mean(scored, cols.loss0), 12);
      const groups = Object.keys(shares(scored)).sort();
      expect(Object.keys(run.all.group_shares!).sort()).toEqual(groups);
      for (const [g, v] of Object.entries(shares(scored))) expect(run.all.group_shares![g]).toBeCloseTo(v, 12);
      const kept = new Map<string, number[]>();
      for (const o of report.outputs) kept.set(`${o.selection} ${o.ratio}`, await keptRows(dir, o.file));
      for (const o of report.outputs) {
        const rows = kept.get(`${o.selection} ${o.ratio}`)!;
        expect(o.rows_kept).toBe(rows.length);
        expect(o.tokens_kept).toBe(rows.reduce((a, r) => a + cols.tokens[r]!, 0));
        expect(o.outliers_kept).toBe(rows.filter((r) => cols.outlier[r]).length);
        expect(o.duplicates_kept).toBe(rows.filter((r) => cols.duplicate[r]).length);
        expect(o.mean_dlc_kept).toBeCloseTo(mean(rows, cols.dlc), 12);
        expect(o.mean_loss0_kept).toBeCloseTo(mean(rows, cols.loss0), 12);
        const want = shares(rows);
        expect(Object.keys(o.group_shares!).sort()).toEqual(groups);
        for (const g of groups) expect(o.group_shares![g]).toBeCloseTo(want[g] ?? 0, 12);
        const others = SELECTIONS.filter((s) => s !== o.selection);
        expect(Object.keys(o.overlap).sort()).toEqual([...others].sort());
        for (const s of others) expect(o.overlap[s]).toBeCloseTo(jaccardOf(rows, kept.get(`${s} ${o.ratio}`)!), 12);
      }
      const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(n / of < 0.1 ? 1 : 0)}%`;
      const drop = (rule: string) => (dir === outA ? "select.exclude drops them" : `select.exclude: [${rule}] drops them`);
      expect(report.warnings).toEqual([
        `1 of ${N} rows (${pct(1, N)}) have no score (1 prompt-too-long): they are listed in unscored.jsonl`,
        `${duplicates} of ${N} rows (${pct(duplicates, N)}) repeat an earlier row's response (${planted.pairOf.size} with its prompt too): flagged duplicate in the scores file; ${drop("duplicates")}`,
        `${outliers} of ${scored.length} scored rows (${pct(outliers, scored.length)}) are outliers (DLC or loss0 more than ${K} robust sd from the median): often junk; ${drop("outliers")}`,
      ]);
      if (dir === outB) {
        // The file keeping the most flagged rows is named with its counts.
        const worst = report.outputs.reduce((a, b) => (b.outliers_kept + b.duplicates_kept > a.outliers_kept + a.duplicates_kept ? b : a));
        expect(worst.outliers_kept + worst.duplicates_kept).toBeGreaterThan(0);
        expect(report.guidance[0]).toBe(
          `${worst.selection} ${worst.ratio} keeps ${worst.outliers_kept} of the ${outliers} scored outliers and ${worst.duplicates_kept} of the ${scoredDuplicates} scored duplicates; select.exclude: [outliers, duplicates] sets them aside before every draw (excluded.parquet lists them with the reason).`,
        );
      } else expect(report.guidance[0]).toContain(`select.exclude set ${run.excluded!.rows} rows aside before the draws`);
      const html = readFileSync(join(dir, "report.html"), "utf8");
      for (const o of report.outputs) expect(html).toContain(`<td>${o.rows_kept} (${((100 * o.rows_kept) / N).toFixed(1)}%)</td>`);
    }
  });

  (hasChromium ? it : it.skip)(
    `the warnings and the decision table are on the first screen (1400 x 900) of report.html and of compare's page${hasChromium ? "" : ` [${NO_CHROMIUM}]`}`,
    async () => {
      expect(compared.status, compared.stderr).toBe(0);
      for (const page of [join(outA, "report.html"), join(outB, "report.html"), join(tmp, "compare/report.html")]) {
        const screen = await firstScreen(page, [".warnings", "table.decision", "table.decision tr:nth-child(3)"], `${page}.png`);
        expect(screen.errors).toEqual([]);
        expect(screen.scrollWidth, page).toBeLessThanOrEqual(1400);
        for (const shown of screen.shown) {
          expect(shown, page).not.toBeNull();
          expect(shown!.top, page).toBeGreaterThanOrEqual(0);
          expect(shown!.bottom, page).toBeLessThanOrEqual(900);
          expect(shown!.onTop, page).toBe(true);
        }
      }
    },
  );

  it("shards flag the same duplicates, and the merge the same outliers, as one process", () => {
    const shardRecipe = recipe("shards.yaml", "shards");
    for (const shard of ["0/2", "1/2"]) {
      const r = runCli(["score", "--config", shardRecipe, "--set", `score.out=${join(tmp, "sharded.arrow")}`, "--shard", shard]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain("the merge flags outliers");
    }
    const merged = join(tmp, "merged.arrow");
    const m = runCli(["merge", "--out", merged, join(tmp, "sharded.shard-0-of-2.arrow"), join(tmp, "sharded.shard-1-of-2.arrow")]);
    expect(m.status, m.stderr).toBe(0);
    const [one, two] = [arrowColumns(SCORES), arrowColumns(merged)];
    for (const c of ["duplicate", "duplicateOf", "duplicatePairOf", "outlier"] as const)
      expect(Array.from(two[c])).toEqual(Array.from(one[c]));
  });

  it("another score.outlier_k: select flags with it, and score rewrites the flags without rescoring", async () => {
    const copy = join(tmp, "k.arrow");
    copyFileSync(SCORES, copy);
    // A k that flags other rows than 3.5 does on these scores.
    const before = outliersByRule(arrowColumns(SCORES), K);
    const k = [5, 8, 12, 20, 40, 80].find((k) => outliersByRule(arrowColumns(SCORES), k).length !== before.length)!;
    const s = runCli([
      "select",
      "--config",
      recipe("k.yaml", "k", ", exclude: [outliers]"),
      "--set",
      `score.out=${copy}`,
      "--set",
      `score.outlier_k=${k}`,
    ]);
    expect(s.status, s.stderr).toBe(0);
    const selected = JSON.parse(readFileSync(join(tmp, "k", "manifest.json"), "utf8")) as Manifest;
    expect(selected.flags.outlier_k).toBe(k);
    expect(selected.excluded!.by_reason).toEqual({ outliers: outliersByRule(arrowColumns(copy), k).length });
    expect(s.stderr).toContain(
      `flagged for score.outlier_k ${K}; selecting with ${k}: ${outliersByRule(arrowColumns(copy), k).length} outliers`,
    );
    const r = runCli(["score", "--config", recipe("k.yaml", "k"), "--set", `score.out=${copy}`, "--set", `score.outlier_k=${k}`]);
    expect(r.status, r.stderr).toBe(0);
    const cols = arrowColumns(copy);
    const want = outliersByRule(cols, k);
    expect(r.stderr).toContain(`kept, its outlier flags recomputed for score.outlier_k ${k} (was ${K}): ${want.length} outliers`);
    expect(r.stderr).not.toContain("level 1/3");
    expect(cols.outlier.flatMap((v, i) => (v ? [i] : []))).toEqual(want);
    expect(want).not.toEqual(before);
    expect(Array.from(cols.dlc)).toEqual(Array.from(arrowColumns(SCORES).dlc));
  });

  it.each([
    // 0.3.0: the same version, no flag columns, no outlier_k or block_rows in the metadata.
    [
      "0.3.0",
      ["duplicate", "duplicate_of", "duplicate_pair_of", "outlier"],
      ["outlier_k", "block_rows"],
      "flags",
      "the duplicate and outlier flags \\(no column duplicate\\)",
    ],
    // Builds between the flags and blocks of rows: every column, no block_rows.
    ["a build before block_rows", [], ["block_rows"], "block_rows", "score.block_rows \\(its batches were packed over all rows\\)"],
  ])("a scores file of %s is rescored and replaced; select asks for the rescore", (_, columns, keys, name, before) => {
    const old = join(tmp, `old-${name}.arrow`);
    const table = tableFromIPC(readFileSync(SCORES));
    const earlier = table.select(table.schema.fields.map((f) => f.name).filter((n) => !columns.includes(n)));
    const meta = JSON.parse(earlier.schema.metadata.get("dlc_prune")!) as Record<string, unknown>;
    for (const k of keys) delete meta[k];
    earlier.schema.metadata.set("dlc_prune", JSON.stringify(meta));
    writeFileSync(old, tableToIPC(earlier, "file"));
    const s = runCli(["select", "--config", recipe("old.yaml", "old"), "--set", `score.out=${old}`]);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(new RegExp(`old-${name}\\.arrow: scores of dlc-prune \\S+ from before ${before}; rescore\\n$`));
    const r = runCli(["score", "--config", recipe("old.yaml", "old"), "--set", `score.out=${old}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `old-${name}.arrow holds the scores of dlc-prune ${TOOL_VERSION} (without ${name}): they are replaced when scoring ends`,
    );
    expect(arrowColumns(old).outlier).toEqual(arrowColumns(SCORES).outlier);
  });
});
