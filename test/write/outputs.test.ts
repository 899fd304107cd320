// The pruned Parquet files, read back by an independent reader (DuckDB): every kept input row, every
// column and value unchanged, in input order, plus dlc; nested across ratios; deterministic; bad input.
// The scores are synthetic (test/helpers/scores.ts): no model runs here.
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import { selectAndWrite } from "../../src/run/select.js";
import { readScoresFile } from "../../src/contract/file.js";
import type { Manifest } from "../../src/contract/manifest.js";
import { testConfig, quiet } from "../helpers/config.js";
import { parquetColumnTypes, plain, readParquetRows } from "../helpers/duckdb.js";
import { runCli } from "../helpers/cli.js";
import { manifestWithoutTimings, writeJsonl } from "../helpers/fixtures.js";
import { writeSyntheticScores } from "../helpers/scores.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
/** Never read: select, write and the refusals below come before any model is opened. */
const model = join(tmp, "no-model");

/** Rows with every kind of column: nulls, missing keys, ints, floats, booleans, lists, structs, mixed types. */
function jsonlRows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => {
    const row: Record<string, unknown> = {
      id: `r${i}`,
      instruction: `Write ${i % 5} short sentences about ${["water", "the city", "a plan"][i % 3]}.`,
      input: i % 4 === 0 ? "Be brief." : "",
      output: i === 7 ? "" : `Here are the sentences number ${i}. The people like it.`,
      source: ["alpaca", "dolly", "gsm8k"][i % 3],
      count: i * 1000,
      weight: i % 2 ? i + 0.25 : i, // ints and floats: a DOUBLE column
      ok: i % 3 === 0,
      tags: i % 6 === 5 ? null : i % 6 === 4 ? [] : ["a", `t${i}`],
      meta: { turn: i, note: i % 2 ? null : "even", scores: [i, i + 1] },
      mixed: i % 2 ? "text" : { k: i }, // disagreeing types: kept as JSON text
    };
    if (i % 5 !== 0) row.maybe = i; // absent from some rows
    return row;
  });
}

/** Synthetic scores for `ids` rows (those with an empty output are unscored, as scoring says), then select. */
async function pipeline(
  data: string,
  out: string,
  rows: { id: string; output: unknown }[],
  extra: Record<string, unknown> = {},
): Promise<Manifest> {
  const config = testConfig({
    "data.path": data,
    "model.path": model,
    "data.fields.id": "id",
    "score.out": join(out, "scores.arrow"),
    "select.out_dir": out,
    "select.ratios": [0.2, 0.5, 1],
    ...extra,
  });
  const unscored = Object.fromEntries(rows.flatMap((r, i) => (r.output === "" ? [[i, "empty-response"]] : [])));
  await writeSyntheticScores(config.score.out, data, rows.length, { unscored, ids: rows.map((r) => r.id) });
  return (await selectAndWrite(config, quiet)).manifest;
}

describe("pruned Parquet from JSONL", () => {
  let data: string;
  let out: string;
  let manifest: Manifest;
  const input = jsonlRows(40);
  beforeAll(async () => {
    data = writeJsonl(join(tmp, "rows.jsonl"), input);
    out = join(tmp, "out-jsonl");
    manifest = await pipeline(data, out, input as { id: string; output: unknown }[]);
  });

  it("keeps the kept input rows column for column, in input order, with their DLC", async () => {
    const { cols } = await readScoresFile(join(out, "scores.arrow"));
    const types = await parquetColumnTypes(join(out, "flexrand-0.5/train.parquet"));
    expect(types).toMatchObject({
      id: "VARCHAR",
      count: "BIGINT",
      weight: "DOUBLE",
      ok: "BOOLEAN",
      tags: "VARCHAR[]",
      maybe: "BIGINT",
      dlc: "DOUBLE",
    });
    expect(types.meta).toBe("STRUCT(turn BIGINT, note VARCHAR, scores BIGINT[])");
    for (const o of manifest.outputs) {
      const rows = await readParquetRows(join(out, o.file));
      expect(rows).toHaveLength(o.rows.kept);
      const ids = rows.map((r) => r.id as string);
      const positions = ids.map((id) => Number(id.slice(1)));
      expect(positions).toEqual([...positions].sort((a, b) => a - b)); // input order
      for (const r of rows) {
        const i = Number((r.id as string).slice(1));
        const { dlc, mixed, ...rest } = plain(r) as Record<string, unknown>;
        const { mixed: inputMixed, ...expected } = input[i]!;
        expect(rest).toEqual({ maybe: null, ...expected });
        expect(JSON.parse(mixed as string)).toEqual(inputMixed);
        expect(dlc).toBe(cols.dlc[i]);
      }
    }
  });

  it("accounts for every row: kept + pruned + unscored, unscored listed with their status", () => {
    const unscored = readFileSync(join(out, "unscored.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(unscored).toEqual([{ row: 7, id: "r7", status: "empty-response", where: `${data}:8` }]);
    for (const o of manifest.outputs) expect(o.rows.kept + o.rows.pruned + o.rows.unscored).toBe(40);
    expect(manifest.outputs.map((o) => o.rows.kept)).toEqual([8, 20, 39]); // round(39 x ratio); ratio 1 keeps every scored row
    expect(manifest.unscored).toEqual({ file: "unscored.jsonl", rows: 1, policy: "drop", by_status: { "empty-response": 1 } });
    expect(manifest.outputs[2]!.response_tokens.pruned).toBe(0);
  });

  it("nests the ratios' subsets", async () => {
    const sets = await Promise.all(manifest.outputs.map(async (o) => new Set((await readParquetRows(join(out, o.file))).map((r) => r.id))));
    for (let i = 1; i < sets.length; i++) for (const id of sets[i - 1]!) expect(sets[i]!.has(id)).toBe(true);
  });

  it("same inputs and seed: byte-identical files; another seed: other subsets", async () => {
    const again = join(tmp, "out-jsonl-again");
    await pipeline(data, again, input as { id: string; output: unknown }[]);
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name !== "manifest.json");
    expect(files.length).toBeGreaterThan(3);
    for (const f of files.map((e) => relative(out, join(e.parentPath, e.name))))
      expect(readFileSync(join(again, f)).equals(readFileSync(join(out, f))), f).toBe(true);
    // The manifests store paths relative to their folders: they differ only by the timings.
    expect(manifestWithoutTimings(join(again, "manifest.json"))).toEqual(manifestWithoutTimings(join(out, "manifest.json")));
    const other = join(tmp, "out-jsonl-seed");
    await pipeline(data, other, input as { id: string; output: unknown }[], { "select.seed": 9 });
    const ids = async (dir: string) => (await readParquetRows(join(dir, "flexrand-0.2/train.parquet"))).map((r) => r.id);
    expect(await ids(other)).not.toEqual(await ids(out));
  });

  it("unscored: keep puts the unscored rows in every output, with a null dlc", async () => {
    const keep = join(tmp, "out-keep");
    const m = await pipeline(data, keep, input as { id: string; output: unknown }[], { "select.unscored": "keep" });
    for (const o of m.outputs) {
      const rows = await readParquetRows(join(keep, o.file));
      const r7 = rows.find((r) => r.id === "r7");
      expect(r7?.dlc).toBeNull();
      expect(r7?.output).toBe("");
    }
  });

  it("stratify draws within each group", async () => {
    const strat = join(tmp, "out-strat");
    const m = await pipeline(data, strat, input as { id: string; output: unknown }[], {
      "select.stratify": "source",
      "select.ratios": [0.5],
    });
    const rows = await readParquetRows(join(strat, "flexrand-0.5/train.parquet"));
    const per = (s: string) => rows.filter((r) => r.source === s).length;
    // Scored rows per source: alpaca 14, dolly 12 (row 7 is unscored), gsm8k 13. FlexRand at 0.5 with split
    // 0.5 draws round(N/4) from each interval of each group: 4 + 4, 3 + 3, 3 + 3.
    expect([per("alpaca"), per("dolly"), per("gsm8k")]).toEqual([8, 6, 6]);
    expect(m.outputs[0]!.rows.kept).toBe(20);
  });
});

describe("pruned Parquet from Parquet written by another writer (dictionary encoding, lists)", () => {
  it("keeps every column and value", async () => {
    const n = 30;
    const data = join(tmp, "in.parquet");
    const columns = {
      id: Array.from({ length: n }, (_, i) => `p${i}`),
      instruction: Array.from({ length: n }, (_, i) => `Explain topic ${i % 3}.`),
      output: Array.from({ length: n }, (_, i) => (i === 4 ? "" : `It is about ${["water", "energy", "data"][i % 3]}.`)),
      source: Array.from({ length: n }, (_, i) => (i % 3 ? "alpaca" : "dolly")),
      tags: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : ["x", i % 2 ? null : "y"])),
      n: Array.from({ length: n }, (_, i) => BigInt(i * 7)),
      f: Array.from({ length: n }, (_, i) => i / 4),
    };
    parquetWriteFile({
      filename: data,
      columnData: Object.entries(columns).map(([name, values]) => ({ name, data: values })),
      schema: [
        { name: "root", num_children: 7 },
        { name: "id", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
        { name: "instruction", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
        { name: "output", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "source", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "tags", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "n", type: "INT64", repetition_type: "REQUIRED" },
        { name: "f", type: "DOUBLE", repetition_type: "REQUIRED" },
      ],
    });
    const out = join(tmp, "out-parquet");
    const manifest = await pipeline(
      data,
      out,
      columns.id.map((id, i) => ({ id, output: columns.output[i] })),
    );
    const types = await parquetColumnTypes(join(out, "flexrand-0.5/train.parquet"));
    expect(types).toEqual({
      id: "VARCHAR",
      instruction: "VARCHAR",
      output: "VARCHAR",
      source: "VARCHAR",
      tags: "VARCHAR[]",
      n: "BIGINT",
      f: "DOUBLE",
      dlc: "DOUBLE",
    });
    const input = await readParquetRows(data); // the input through the same independent reader
    for (const o of manifest.outputs) {
      const rows = await readParquetRows(join(out, o.file));
      expect(rows).toHaveLength(o.rows.kept);
      for (const r of rows) {
        const { dlc, ...rest } = r;
        expect(rest).toEqual(input[Number((r.id as string).slice(1))]);
        expect(typeof dlc).toBe("number");
      }
    }
  });
});

describe("bad input to select", () => {
  let data: string;
  let out: string;
  beforeAll(async () => {
    data = writeJsonl(join(tmp, "small.jsonl"), jsonlRows(12));
    out = join(tmp, "out-small");
    await pipeline(data, out, jsonlRows(12) as { id: string; output: unknown }[]);
  });

  const selectArgs = (dir: string, extra: string[]) => [
    "select",
    "--data",
    data,
    "--scores",
    join(out, "scores.arrow"),
    "--out-dir",
    dir,
    ...extra,
  ];
  function refused(args: string[], dir: string, ...mentions: string[]) {
    const r = runCli(args);
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("dlc-prune: error: "));
    expect(lines).toHaveLength(1);
    for (const m of mentions) expect(lines[0]).toContain(m);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  }

  it("ratios outside (0, 1], a split outside (0, 1), an unknown key or stratify field: one-line errors, no output", () => {
    refused(selectArgs(join(tmp, "e1"), ["--ratio", "1.5"]), join(tmp, "e1"), "select.ratios");
    refused(selectArgs(join(tmp, "e2"), ["--ratio", "0"]), join(tmp, "e2"), "select.ratios");
    refused(selectArgs(join(tmp, "e3"), ["--split", "1"]), join(tmp, "e3"), "select.split");
    refused(selectArgs(join(tmp, "e4"), ["--set", "select.ratio=0.3"]), join(tmp, "e4"), "unknown key select.ratio");
    refused(selectArgs(join(tmp, "e5"), ["--stratify", "nope"]), join(tmp, "e5"), "no row of", '"nope"');
  });

  it("scores of another data file are refused", () => {
    const other = join(tmp, "other.jsonl");
    writeJsonl(other, jsonlRows(13));
    refused(
      ["select", "--data", other, "--scores", join(out, "scores.arrow"), "--out-dir", join(tmp, "e6")],
      join(tmp, "e6"),
      "scores of another data file",
      other,
    );
  });

  it("a data column named dlc is refused by run before any scoring", () => {
    const clash = join(tmp, "clash.jsonl");
    writeFileSync(clash, JSON.stringify({ instruction: "a", output: "b", dlc: 1 }) + "\n");
    const cfg = join(tmp, "clash.yaml");
    writeFileSync(
      cfg,
      `data: { path: ${clash} }\nmodel: { path: ${model} }\nscore: { out: ${join(tmp, "clash-out/scores.arrow")} }\nselect: { out_dir: ${join(tmp, "clash-out")} }\n`,
    );
    refused(["run", "--config", cfg], join(tmp, "clash-out"), clash, 'already has a column "dlc"');
  });

  it("a data column named dlc_exact is refused before any scoring when score.refine adds that column", () => {
    const clash = join(tmp, "clash-refined.jsonl");
    writeFileSync(clash, JSON.stringify({ instruction: "a", output: "b", dlc_exact: true }) + "\n");
    const cfg = join(tmp, "clash-refined.yaml");
    const dir = join(tmp, "clash-refined-out");
    writeFileSync(
      cfg,
      `data: { path: ${clash} }\nmodel: { path: ${model} }\nscore: { out: ${join(dir, "scores.arrow")}, refine: boundary }\nselect: { out_dir: ${dir} }\n`,
    );
    refused(["run", "--config", cfg], dir, clash, 'already has a column "dlc_exact"');
    // Without refine the column is free: the run gets past the check (to this describe's missing model).
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace(", refine: boundary", ""));
    const r = runCli(["run", "--config", cfg]);
    expect(r.stderr).not.toContain("already has a column");
    expect(r.stderr).toContain("model folder not found");
  });

  it("selecting other ratios into the same folder removes the outputs of the old ones", () => {
    const dir = join(tmp, "reselect");
    expect(runCli(selectArgs(dir, ["--ratio", "0.2", "--ratio", "0.5"])).status).toBe(0);
    expect(runCli(selectArgs(dir, ["--ratio", "0.3"])).status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["flexrand-0.3", "manifest.json", "unscored.jsonl"]);
    expect(readdirSync(join(dir, "flexrand-0.3"))).toEqual(["train.parquet"]);
  });

  it("select from the CLI writes what the API writes", () => {
    const dir = join(tmp, "cli-select");
    const r = runCli(selectArgs(dir, ["--ratio", "0.2", "--ratio", "0.5", "--ratio", "1", "--set", "data.fields.id=id"]));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("flexrand-0.2/train.parquet: 2 rows kept");
    for (const f of ["flexrand-0.2/train.parquet", "flexrand-0.5/train.parquet", "flexrand-1/train.parquet", "unscored.jsonl"])
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(out, f))), f).toBe(true);
  });
});
