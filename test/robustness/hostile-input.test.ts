// Hostile and faulty input, as a careless (or malicious) user would give it. Each numbered case is one of
// issue 8's findings: the user's files are never written or deleted, every row is accounted for, and every
// user-caused condition is a one-line error naming the file, the row or the field — never a stack trace.
// Add new cases here: the last test checks the CLI's stderr over all of them.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join, dirname } from "node:path";
import { parquetReadObjects, asyncBufferFromFile } from "hyparquet";
import { parquetWriteFile } from "hyparquet-writer";
import { Field, Int32, Schema, Table, tableToIPC } from "apache-arrow";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { setPath } from "../../src/config/load.js";
import { GraphBuilder, DataType, encodeModel } from "../../src/model/onnx.js";
import { selectAndWrite } from "../../src/run/select.js";
import { scoreOnly } from "../../src/run/score.js";
import { readScoresFile } from "../../src/contract/file.js";
import type { Manifest } from "../../src/contract/manifest.js";
import { TOOL_VERSION } from "../../src/version.js";
import { CLI, runCli, type CliResult } from "../helpers/cli.js";
import { testConfig, quiet } from "../helpers/config.js";
import { parquetColumnTypes, plain, readParquetRows } from "../helpers/duckdb.js";
import { alpacaRows, lcg, tinyModel, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-hostile-");
let model: string;
const calls: { args: string[]; r: CliResult }[] = [];

/** The CLI in `cwd`, its result kept for the stack-trace check at the end. */
function cli(args: string[], cwd: string): CliResult {
  const r = runCli(args, { cwd });
  calls.push({ args, r });
  return r;
}

function oneLineError(r: CliResult, ...mentions: string[]): string {
  expect(r.status, r.stdout + r.stderr).toBe(1);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("dlc-prune: error: "));
  expect(lines, r.stderr).toHaveLength(1);
  for (const m of mentions) expect(lines[0], r.stderr).toContain(m);
  return lines[0]!;
}

function ok(r: CliResult): void {
  expect(r.status, r.stderr).toBe(0);
}

/** A fresh folder for one case. */
function caseDir(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A YAML recipe in `dir` from dotted keys (paths relative to `dir`, where the CLI runs). */
function recipe(dir: string, keys: Record<string, unknown>, name = "recipe.yaml"): string {
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({
    "model.path": model,
    "score.out": "out/scores.arrow",
    "select.out_dir": "out",
    "select.ratios": [0.5],
    ...keys,
  }))
    setPath(doc, k, v);
  writeFileSync(join(dir, name), YAML.stringify(doc));
  return name;
}

const bytesOf = (path: string) => readFileSync(path);
const tempsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.includes(".tmp-")) : []);

function parquetData(path: string, rows: Record<string, unknown>[]): string {
  parquetWriteFile({
    filename: path,
    columnData: ["instruction", "input", "output"].map((name) => ({
      name,
      data: rows.map((r) => r[name] as string),
      type: "STRING" as const,
    })),
  });
  return path;
}

/** A graph with the scorer's inputs whose logits are [batch, vocab]: not a causal LM's [batch, sequence, vocab]. */
function notCausal(): Uint8Array {
  const g = new GraphBuilder();
  const ids = g.input("input_ids", DataType.INT64, ["batch_size", "sequence_length"]);
  g.input("attention_mask", DataType.INT64, ["batch_size", "sequence_length"]);
  const embed = g.initializer("embed", DataType.FLOAT, [512, 8], new Float32Array(512 * 8).fill(0.01));
  const head = g.initializer("head", DataType.FLOAT, [8, 512], new Float32Array(8 * 512).fill(0.01));
  const w = g.initializer("w", DataType.FLOAT, [8, 8], new Float32Array(64).fill(0.1));
  const h = g.op1("MatMul", [g.op1("Gather", [embed, ids]), w]);
  g.op1("MatMul", [g.op1("ReduceMean", [h], { axes: [1], keepdims: 0 }), head], {}, "logits");
  g.output("logits", DataType.FLOAT, ["batch_size", 512]);
  return encodeModel(g.toModel({ name: "not-causal", opset: 17, producer: "test" }));
}

/** Can this process mount a tmpfs in a private mount namespace (root, with `unshare`)? */
const canMount = process.getuid?.() === 0 && spawnSync("unshare", ["-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"]).status === 0;

/** The CLI with a fresh tmpfs (mount options `opts`) at `mnt`, seen by it alone; stdout: what the tmpfs holds after. */
function inMount(cwd: string, mnt: string, opts: string, args: string[]): CliResult {
  const script = `mount -t tmpfs -o ${opts} tmpfs "$1" && shift && "$@"; rc=$?; cd "${mnt}" && find . -mindepth 1 | sed 's|^./||'; exit $rc`;
  const r = spawnSync("unshare", ["-m", "sh", "-c", script, "sh", mnt, process.execPath, CLI, ...args], { cwd, encoding: "utf8" });
  const result = { status: r.status, stdout: r.stdout, stderr: r.stderr };
  calls.push({ args, r: result });
  return result;
}

beforeAll(async () => {
  model = await tinyModel();
});

describe("1-4: outputs never overwrite or delete an input or a foreign file", () => {
  it("1: score.out naming the data file, a link to it, or the recipe is refused, and they are untouched", () => {
    const dir = caseDir("c1");
    const data = writeJsonl(join(dir, "in.jsonl"), alpacaRows(12));
    const cfg = recipe(dir, { "data.path": "in.jsonl" });
    symlinkSync("in.jsonl", join(dir, "link.arrow"));
    const before = [bytesOf(data), bytesOf(join(dir, cfg))];
    oneLineError(cli(["run", "--config", cfg, "--set", "score.out=in.jsonl"], dir), "score.out in.jsonl is the data file");
    oneLineError(cli(["run", "--config", cfg, "--set", "score.out=link.arrow"], dir), "score.out link.arrow is the data file");
    oneLineError(cli(["score", "--config", cfg, "--out", cfg], dir), `score.out ${cfg} is the config file`);
    oneLineError(cli(["run", "--config", cfg, "--set", `score.out=${model}/onnx/model.onnx`], dir), "is inside the model folder");
    expect([bytesOf(data), bytesOf(join(dir, cfg))]).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(["in.jsonl", "link.arrow", "out", cfg].sort());
    expect(readdirSync(join(dir, "out"))).toEqual([]);
  });

  it("2: a data file named like an output in select.out_dir is refused and untouched", () => {
    for (const name of ["unscored.jsonl", "report.json", "manifest.json", "flexrand-0.5/train.parquet"]) {
      const dir = caseDir(`c2-${name}`);
      mkdirSync(join(dir, "d"));
      const path = join(dir, "d", name);
      mkdirSync(dirname(path), { recursive: true });
      if (name.endsWith(".jsonl")) writeJsonl(path, alpacaRows(12));
      else if (name.endsWith(".json")) writeFileSync(path, JSON.stringify(alpacaRows(12)));
      else parquetData(path, alpacaRows(12));
      const before = bytesOf(path);
      const cfg = recipe(dir, { "data.path": `d/${name}`, "select.out_dir": "d", "score.out": "s/scores.arrow" });
      oneLineError(cli(["run", "--config", cfg], dir), `select.out_dir d/${name} is the data file`);
      expect(bytesOf(path).equals(before), name).toBe(true);
      expect(existsSync(join(dir, "s/scores.arrow")), "refused before scoring").toBe(false);
    }
  });

  it("3: a manifest dlc-prune did not write deletes nothing: not outside the folder, not the data, not a changed output", () => {
    const dir = caseDir("c3");
    writeFileSync(join(dir, "victim.txt"), "mine");
    mkdirSync(join(dir, "o"));
    const data = writeJsonl(join(dir, "o/train.jsonl"), alpacaRows(12));
    // Crafted with this version's marker, listing paths outside the folder and the data; then as 0.1.0 wrote them.
    const crafted = {
      tool: "dlc-prune",
      version: TOOL_VERSION,
      state: "complete",
      outputs: [{ file: "../victim.txt" }, { file: "train.jsonl" }],
      files: [{ file: "../victim.txt", sha256: "0".repeat(64), bytes: 4 }],
    };
    writeFileSync(join(dir, "o/manifest.json"), JSON.stringify(crafted));
    const cfg = recipe(dir, { "data.path": "o/train.jsonl", "select.out_dir": "o" });
    oneLineError(cli(["run", "--config", cfg], dir), "o/manifest.json: not a manifest written by this version of dlc-prune");
    writeFileSync(join(dir, "o/manifest.json"), JSON.stringify({ ...crafted, version: "0.1.0" }));
    oneLineError(
      cli(["run", "--config", cfg], dir),
      "o/manifest.json: written by dlc-prune 0.1.0, whose manifest this version cannot check",
    );
    expect(readFileSync(join(dir, "victim.txt"), "utf8")).toBe("mine");
    expect(existsSync(data)).toBe(true);

    // The folder's own manifest, but a user's file where an output was: never replaced, never deleted.
    writeJsonl(join(dir, "train.jsonl"), alpacaRows(12));
    const cfg2 = recipe(dir, { "data.path": "train.jsonl", "select.out_dir": "out2", "select.ratios": [0.3] }, "r2.yaml");
    ok(cli(["run", "--config", cfg2], dir));
    writeFileSync(join(dir, "out2/flexrand-0.3/train.parquet"), "my own notes");
    oneLineError(
      cli(["run", "--config", cfg2, "--set", "select.ratios=[0.5]"], dir),
      "flexrand-0.3/train.parquet changed since dlc-prune wrote it",
    );
    expect(readFileSync(join(dir, "out2/flexrand-0.3/train.parquet"), "utf8")).toBe("my own notes");
    // ... and a file of the user's beside dlc-prune's outputs.
    rmSync(join(dir, "out2/flexrand-0.3/train.parquet"));
    writeFileSync(join(dir, "out2/notes.txt"), "mine too");
    oneLineError(cli(["run", "--config", cfg2], dir), "holds files dlc-prune did not write (notes.txt)");
    expect(readFileSync(join(dir, "out2/notes.txt"), "utf8")).toBe("mine too");
    // ... or inside the folder of a kept file.
    rmSync(join(dir, "out2/notes.txt"));
    writeFileSync(join(dir, "out2/flexrand-0.3/notes.txt"), "mine three");
    oneLineError(cli(["run", "--config", cfg2], dir), "holds files dlc-prune did not write (flexrand-0.3/notes.txt)");
    expect(readFileSync(join(dir, "out2/flexrand-0.3/notes.txt"), "utf8")).toBe("mine three");
  });

  it("4: merge --out naming one of its shards (or a user's file) is refused, the shard untouched", () => {
    const dir = caseDir("c4");
    writeJsonl(join(dir, "d.jsonl"), alpacaRows(12));
    const cfg = recipe(dir, { "data.path": "d.jsonl", "score.out": "s.arrow", "score.batch_tokens": 64 });
    for (const i of [0, 1]) ok(cli(["score", "--config", cfg, "--shard", `${i}/2`], dir));
    const shards = ["s.shard-0-of-2.arrow", "s.shard-1-of-2.arrow"];
    const before = bytesOf(join(dir, shards[0]!));
    oneLineError(cli(["merge", "--out", shards[0]!, ...shards], dir), `--out ${shards[0]} is the shard file`);
    expect(bytesOf(join(dir, shards[0]!)).equals(before)).toBe(true);
    writeFileSync(join(dir, "mine.arrow"), "not scores");
    oneLineError(cli(["merge", "--out", "mine.arrow", ...shards], dir), "--out mine.arrow exists and is not a dlc-prune scores file");
    expect(readFileSync(join(dir, "mine.arrow"), "utf8")).toBe("not scores");
    // An Arrow file with another tool's metadata is someone else's; one of dlc-prune 0.1.0 is ours to replace.
    const arrow = (meta: object) =>
      tableToIPC(new Table(new Schema([new Field("row", new Int32())], new Map([["dlc_prune", JSON.stringify(meta)]]))), "file");
    writeFileSync(join(dir, "other.arrow"), arrow({ tool: "another-tool", version: "1.0" }));
    oneLineError(cli(["merge", "--out", "other.arrow", ...shards], dir), "--out other.arrow exists and is not a dlc-prune scores file");
    writeFileSync(join(dir, "old.arrow"), arrow({ tool: "dlc-prune", version: "0.1.0", levels: 3 }));
    const replaced = cli(["score", "--config", cfg, "--out", "old.arrow"], dir);
    ok(replaced);
    expect(replaced.stderr).toContain("old.arrow holds the scores of dlc-prune 0.1.0: they are replaced when scoring ends");
  });
});

describe("5-9: every row counted, none altered silently", () => {
  it("5: a raw carriage return between JSON tokens is whitespace, not a line break; CRLF ends lines", async () => {
    const dir = caseDir("c5");
    const rows = alpacaRows(12).map((r) => JSON.stringify(r));
    rows[3] = rows[3]!.replace(',"input"', ',\r"input"'); // valid JSON
    rows[9] = "{ not json";
    writeFileSync(join(dir, "d.jsonl"), rows.join("\r\n") + "\r\n");
    const cfg = recipe(dir, { "data.path": "d.jsonl" });
    oneLineError(cli(["run", "--config", cfg], dir), "d.jsonl:10: malformed JSON");
    ok(cli(["run", "--config", cfg, "--set", "data.on_error=skip"], dir));
    const { cols } = await readScoresFile(join(dir, "out/scores.arrow"));
    expect(cols.status).toHaveLength(12);
    expect(cols.status[3]).toBe("ok");
    expect(cols.status.filter((s) => s !== "ok")).toEqual([expect.stringMatching(/^bad-row: malformed JSON/)]);
    const unscored = readFileSync(join(dir, "out/unscored.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(unscored).toEqual([expect.objectContaining({ row: 9, where: "d.jsonl:10", text: "{ not json" })]);
  });

  it("6: an integer beyond 2^53 in JSONL is never rounded: an error naming row and field, or an unscored row", async () => {
    const dir = caseDir("c6");
    const lines = alpacaRows(12).map((r, i) => JSON.stringify({ ...r, big: i === 4 ? 0 : 9007199254740991 - i }));
    lines[4] = lines[4]!.replace('"big":0', '"big":9007199254740993');
    writeFileSync(join(dir, "d.jsonl"), lines.join("\n") + "\n");
    const cfg = recipe(dir, { "data.path": "d.jsonl", "select.ratios": [1] });
    oneLineError(cli(["run", "--config", cfg], dir), "d.jsonl:5", "field big", "9007199254740993", "beyond 2^53");
    ok(cli(["run", "--config", cfg, "--set", "data.on_error=skip"], dir));
    const kept = (await readParquetRows(join(dir, "out/flexrand-1/train.parquet"))).map((r) => r.big as bigint);
    expect(kept).toHaveLength(11);
    expect(kept).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(9007199254740991 - i)).filter((_, i) => i !== 4)); // exact, as BIGINT
    const manifest = JSON.parse(readFileSync(join(dir, "out/manifest.json"), "utf8")) as Manifest;
    expect(Object.keys(manifest.unscored.by_status)).toEqual([
      "bad-row: field big holds the integer 9007199254740993, beyond 2^53, which the Parquet writer cannot store exactly",
    ]);

    // Parquet input: the same, named by row and column.
    const pq = join(dir, "d.parquet");
    parquetWriteFile({
      filename: pq,
      columnData: [
        { name: "instruction", data: ["a", "b", "c"], type: "STRING" },
        { name: "output", data: ["x", "y", "z"], type: "STRING" },
        { name: "n", data: [1n, 2n, 2n ** 60n], type: "INT64" },
      ],
    });
    oneLineError(
      cli(
        ["run", "--config", cfg, "--set", "data.path=d.parquet", "--set", "select.out_dir=out-pq", "--set", "score.out=out-pq/s.arrow"],
        dir,
      ),
      "d.parquet row 2",
      "field n",
      String(2n ** 60n),
    );
  });

  it("7: a column that is {} in every row is written so every reader reads it", async () => {
    const dir = caseDir("c7");
    writeJsonl(
      join(dir, "d.jsonl"),
      alpacaRows(12).map((r) => ({ ...r, meta: {} })),
    );
    ok(cli(["run", "--config", recipe(dir, { "data.path": "d.jsonl" })], dir));
    const file = join(dir, "out/flexrand-0.5/train.parquet");
    expect((await parquetColumnTypes(file)).meta).toMatch(/^(JSON|VARCHAR)$/);
    const rows = await readParquetRows(file);
    expect(rows.map((r) => JSON.parse(String(r.meta)))).toEqual(rows.map(() => ({})));
    const byHyparquet = await parquetReadObjects({ file: await asyncBufferFromFile(file) });
    expect(byHyparquet.every((r) => "meta" in r)).toBe(true);
  });

  it("8: bytes that are not UTF-8, and lone surrogates, make a bad row: refused, or unscored and counted", async () => {
    const dir = caseDir("c8");
    const lines = alpacaRows(12).map((r) => Buffer.from(JSON.stringify(r)));
    lines[4] = Buffer.concat([Buffer.from('{"instruction":"caf'), Buffer.from([0xe9]), Buffer.from('","output":"x"}')]); // latin-1 é
    lines[6] = Buffer.from('{"instruction":"a","output":"half a pair \\ud800 here"}');
    writeFileSync(join(dir, "d.jsonl"), Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")])));
    const cfg = recipe(dir, { "data.path": "d.jsonl", "select.ratios": [1] });
    oneLineError(cli(["run", "--config", cfg], dir), "d.jsonl:5", "not valid UTF-8");
    ok(cli(["run", "--config", cfg, "--set", "data.on_error=skip"], dir));
    const manifest = JSON.parse(readFileSync(join(dir, "out/manifest.json"), "utf8")) as Manifest;
    expect(manifest.unscored.by_status).toEqual({
      "bad-row: bytes that are not valid UTF-8 (at byte 20 of the line)": 1,
      "bad-row: field output holds a lone UTF-16 surrogate, which is not a character": 1,
    });
    const kept = await readParquetRows(join(dir, "out/flexrand-1/train.parquet"));
    expect(kept).toHaveLength(10);
    expect(kept.some((r) => JSON.stringify(plain(r)).includes("\ufffd"))).toBe(false);
  });

  it("9: stratified selection shares one rounded total out among small groups; empty results are errors", async () => {
    const dir = caseDir("c9");
    writeJsonl(
      join(dir, "d.jsonl"),
      alpacaRows(12).map((r, i) => ({ ...r, g: `group-${Math.floor(i / 2)}` })),
    );
    for (const strategy of ["random", "flexrand", "easy"]) {
      const out = `out-${strategy}`;
      ok(
        cli(
          [
            "run",
            "--config",
            recipe(dir, {
              "data.path": "d.jsonl",
              "select.stratify": "g",
              "select.ratios": [0.3],
              "select.strategy": strategy,
              "select.out_dir": out,
              "score.out": "s.arrow",
            }),
          ],
          dir,
        ),
      );
      const kept = await readParquetRows(join(dir, out, `${strategy}-0.3/train.parquet`));
      expect(kept, strategy).toHaveLength(4); // round(12 x 0.3), not 6 x round(2 x 0.3) = 0
      expect(new Set(kept.map((r) => r.g)).size, strategy).toBe(4);
    }
    const cfg = recipe(dir, { "data.path": "d.jsonl", "score.out": "s.arrow" });
    oneLineError(
      cli(["run", "--config", cfg, "--set", "score.max_tokens=8"], dir),
      "d.jsonl: no row can be scored (12 prompt-too-long; score.max_tokens is 8)",
    );
    oneLineError(
      cli(["run", "--config", cfg, "--set", "select.ratios=[0.01]"], dir),
      "select.ratios 0.01: flexrand keeps none of the 12 scored rows",
    );
  });
});

describe("10-15: one-line errors, nothing left behind", () => {
  it("10: a damaged Parquet file is named, with what is damaged", () => {
    const dir = caseDir("c10");
    const good = parquetData(join(dir, "good.parquet"), alpacaRows(40));
    const cfg = recipe(dir, { "data.path": "bad.parquet" });
    const damage = (at: (size: number) => number, len: number) => {
      const bytes = Buffer.from(readFileSync(good));
      bytes.fill(0xff, at(bytes.length), at(bytes.length) + len);
      writeFileSync(join(dir, "bad.parquet"), bytes);
      return cli(["run", "--config", cfg], dir);
    };
    // A page header (the first column's page starts after the 4-byte magic), then the compressed bytes after it.
    oneLineError(
      damage(() => 4, 12),
      "bad.parquet: row group 0 (rows 0-39) cannot be read: the file is damaged or truncated",
    );
    expect(
      oneLineError(
        damage(() => 30, 20),
        "bad.parquet",
      ),
    ).toMatch(/row group 0 \(rows 0-39\) cannot be read|row \d+: field \w+ holds bytes that are not valid UTF-8/);
    expect(
      oneLineError(
        damage(() => 40, 24),
        "bad.parquet",
      ),
    ).toMatch(/row group 0 \(rows 0-39\) cannot be read|row \d+: field \w+ holds bytes that are not valid UTF-8/);
    const footer = oneLineError(
      damage((n) => n - 60, 40),
      "bad.parquet: its footer (the Parquet metadata) cannot be read",
    );
    expect(footer).not.toMatch(/TypeError|undefined/);
  });

  it("11: keys __proto__ and constructor: a clear refusal before scoring, or kept like any other column", async () => {
    const dir = caseDir("c11");
    writeFileSync(
      join(dir, "proto.jsonl"),
      alpacaRows(4)
        .map((r) => JSON.stringify(r).replace("{", '{"__proto__":{"x":1},"constructor":"c",'))
        .join("\n") + "\n",
    );
    oneLineError(
      cli(["run", "--config", recipe(dir, { "data.path": "proto.jsonl" })], dir),
      "proto.jsonl: column __proto__ cannot be written",
    );
    expect(existsSync(join(dir, "out/scores.arrow")), "refused before scoring").toBe(false);
    expect(tempsIn(join(dir, "out"))).toEqual([]);
    writeFileSync(
      join(dir, "ctor.jsonl"),
      alpacaRows(4)
        .map((r, i) => JSON.stringify({ constructor: `c${i}`, toString: i, ...r }))
        .join("\n") + "\n",
    );
    ok(
      cli(
        [
          "run",
          "--config",
          recipe(dir, { "data.path": "ctor.jsonl", "select.ratios": [1], "select.out_dir": "out2", "score.out": "out2/s.arrow" }),
        ],
        dir,
      ),
    );
    const rows = (await readParquetRows(join(dir, "out2/flexrand-1/train.parquet"))).map((r) => [r.constructor, r.toString].map(plain));
    expect(rows).toEqual([
      ["c0", 0],
      ["c1", 1],
      ["c2", 2],
      ["c3", 3],
    ]);
  });

  it("12: a value nested 20,000 deep is a bad row with a clear reason, not a stack overflow", async () => {
    const dir = caseDir("c12");
    const lines = alpacaRows(6).map((r) => JSON.stringify(r));
    lines[2] = `{"instruction":"a","output":"b","deep":${"[".repeat(20000)}${"]".repeat(20000)}}`;
    writeFileSync(join(dir, "d.jsonl"), lines.join("\n") + "\n");
    const cfg = recipe(dir, { "data.path": "d.jsonl" });
    oneLineError(cli(["run", "--config", cfg], dir), "d.jsonl:3", "field deep", "nested deeper than 64 levels");
    ok(cli(["run", "--config", cfg, "--set", "data.on_error=skip"], dir));
    const { cols } = await readScoresFile(join(dir, "out/scores.arrow"));
    expect(cols.status[2]).toMatch(/^bad-row: field deep/);
  });

  it("13: a model whose parts disagree, or that is not a causal LM, is named before or instead of an onnxruntime crash", async () => {
    const dir = caseDir("c13");
    writeJsonl(join(dir, "d.jsonl"), alpacaRows(6));
    const variant = (name: string, change: (m: string) => void) => {
      const m = join(dir, name);
      cpSync(model, m, { recursive: true });
      change(m);
      return cli(
        [
          "run",
          "--config",
          recipe(dir, { "data.path": "d.jsonl", "model.path": name, "select.out_dir": `out-${name}`, "score.out": `out-${name}/s.arrow` }),
        ],
        dir,
      );
    };
    const bigger = await tinyModel({ vocab: 600 });
    oneLineError(
      variant("tok", (m) => cpSync(join(bigger, "tokenizer.json"), join(m, "tokenizer.json"))),
      "the tokenizer has ids up to 599, but the model takes 512 token ids",
    );
    oneLineError(
      variant("cfg", (m) =>
        writeFileSync(
          join(m, "config.json"),
          JSON.stringify({ ...JSON.parse(readFileSync(join(m, "config.json"), "utf8")), vocab_size: 600 }),
        ),
      ),
      "vocabulary sizes disagree (config.json vocab_size 600, the token embedding's rows 512, the logits' width 512)",
    );
    oneLineError(
      variant("empty", (m) => writeFileSync(join(m, "onnx/model.onnx"), "")),
      "onnx/model.onnx: not an ONNX model (an empty file)",
    );
    oneLineError(
      variant("shape", (m) => writeFileSync(join(m, "onnx/model.onnx"), notCausal())),
      `shape: `,
    );
    writeFileSync(join(dir, "afile"), "x");
    oneLineError(
      cli(["run", "--config", recipe(dir, { "data.path": "d.jsonl", "model.path": "afile" })], dir),
      "afile: is a file; model.path names a model folder",
    );
  });

  it("14: output locations that cannot be written are named before scoring", () => {
    const dir = caseDir("c14");
    writeJsonl(join(dir, "d.jsonl"), alpacaRows(6));
    writeFileSync(join(dir, "afile"), "x");
    oneLineError(
      cli(["run", "--config", recipe(dir, { "data.path": "d.jsonl", "select.out_dir": "afile" })], dir),
      "select.out_dir afile: cannot write there: exists and is not a folder",
    );
    oneLineError(
      cli(["run", "--config", recipe(dir, { "data.path": "d.jsonl", "score.out": "afile/s.arrow" })], dir),
      "score.out afile/s.arrow: cannot write in afile: exists and is not a folder",
    );
    expect(readFileSync(join(dir, "afile"), "utf8")).toBe("x");
    expect(existsSync(join(dir, "out/scores.arrow"))).toBe(false);
  });

  (canMount ? it : it.skip)(
    `14: a read-only file system, a full disk, and no permission: one line naming the path${canMount ? "" : " [skipped: needs root and `unshare -m` to mount a small tmpfs]"}`,
    () => {
      const dir = caseDir("c14-fs");
      chmodSync(tmp, 0o755);
      chmodSync(dir, 0o755);
      writeJsonl(join(dir, "d.jsonl"), alpacaRows(12));
      const mnt = join(dir, "mnt");
      mkdirSync(mnt);
      const cfg = recipe(dir, {
        "data.path": "d.jsonl",
        "select.out_dir": "mnt/out",
        "score.out": "mnt/out/s.arrow",
        "select.ratios": [0.3, 0.5],
      });
      const ro = inMount(dir, mnt, "ro", ["run", "--config", cfg]);
      oneLineError(ro, "select.out_dir mnt/out: cannot write there: read-only file system");
      // 64 KiB: room for the scores and the Parquet files, not for report.html. Nothing is published.
      const full = inMount(dir, mnt, "size=64k", ["run", "--config", cfg]);
      oneLineError(full, "mnt/out/report.html: no space left on the device");
      expect(full.stdout.trim().split("\n").sort()).toEqual(["out", "out/s.arrow"]);
      // Another user, without write permission on the folder.
      mkdirSync(join(dir, "locked"), { mode: 0o555 });
      chmodSync(join(dir, "locked"), 0o555);
      for (const p of [model, join(model, "..")]) chmodSync(p, 0o755);
      const denied = spawnSync(
        "setpriv",
        [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          process.execPath,
          CLI,
          "run",
          "--config",
          cfg,
          "--set",
          "select.out_dir=locked/out",
          "--set",
          "score.out=s.arrow",
        ],
        { cwd: dir, encoding: "utf8" },
      );
      calls.push({ args: ["run (as nobody)"], r: { status: denied.status, stdout: denied.stdout, stderr: denied.stderr } });
      oneLineError(
        { status: denied.status, stdout: denied.stdout, stderr: denied.stderr },
        "select.out_dir locked/out: cannot write there: permission denied",
      );
    },
  );

  it("15: a corrupt checkpoint, a foreign work folder, a truncated shard, a symlink loop: one line each", () => {
    const dir = caseDir("c15");
    writeJsonl(join(dir, "d.jsonl"), alpacaRows(12));
    const cfg = recipe(dir, { "data.path": "d.jsonl", "score.out": "s.arrow", "score.batch_tokens": 64 });
    mkdirSync(join(dir, "s.arrow.work"));
    writeFileSync(join(dir, "s.arrow.work/state.json"), '{ "level": 1, "nextBa');
    writeFileSync(join(dir, "s.arrow.work/losses.f64"), Buffer.alloc(12 * 3 * 8));
    const r15 = cli(["score", "--config", cfg], dir);
    ok(r15);
    expect(r15.stderr).toContain(
      "s.arrow.work/state.json: the checkpoint is damaged (not valid JSON: truncated?): discarded, scoring starts over",
    );
    ok(cli(["score", "--config", cfg, "--restart"], dir));
    expect(existsSync(join(dir, "s.arrow.work"))).toBe(false);
    mkdirSync(join(dir, "t.arrow.work"));
    writeFileSync(join(dir, "t.arrow.work/thesis.tex"), "mine");
    oneLineError(
      cli(["score", "--config", cfg, "--out", "t.arrow", "--restart"], dir),
      "t.arrow.work: holds files dlc-prune did not write (thesis.tex)",
    );
    expect(readFileSync(join(dir, "t.arrow.work/thesis.tex"), "utf8")).toBe("mine");

    for (const i of [0, 1]) ok(cli(["score", "--config", cfg, "--shard", `${i}/2`], dir));
    truncateSync(join(dir, "s.shard-1-of-2.arrow"), Math.floor(statSync(join(dir, "s.shard-1-of-2.arrow")).size / 2));
    oneLineError(
      cli(["merge", "--out", "m.arrow", "s.shard-0-of-2.arrow", "s.shard-1-of-2.arrow"], dir),
      "s.shard-1-of-2.arrow: truncated or not an Arrow file",
    );

    symlinkSync("loop-b.jsonl", join(dir, "loop-a.jsonl"));
    symlinkSync("loop-a.jsonl", join(dir, "loop-b.jsonl"));
    oneLineError(cli(["run", "--config", cfg, "--set", "data.path=loop-a.jsonl"], dir), "loop-a.jsonl: too many levels of symbolic links");
  });
});

describe("a property: every row accounted for, every kept row unchanged", () => {
  it("random mixes of valid rows, malformed lines, CR / CRLF endings and blank lines (seeded)", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const rand = lcg(seed);
      const dir = caseDir(`prop-${seed}`);
      const lines: { text: string; value?: Record<string, unknown> }[] = [];
      const parts: string[] = [];
      for (let i = 0; i < 24; i++) {
        const x = rand();
        const eol = rand() < 0.5 ? "\r\n" : "\n";
        if (x < 0.1)
          parts.push(eol); // blank: not a row
        else if (x < 0.25) {
          const text = `{"instruction": "broken ${i}", "output": `;
          lines.push({ text });
          parts.push(text + eol);
        } else {
          const value = {
            instruction: `Task ${i}: name ${Math.floor(rand() * 100)} things.`,
            input: rand() < 0.3 ? "Be brief." : "",
            output: `Answer ${i}:\r${"word ".repeat(1 + Math.floor(rand() * 6))}`,
            k: i,
            tags: rand() < 0.5 ? ["a", `t${i}`] : null,
          };
          const text = JSON.stringify(value).replace(',"output"', rand() < 0.3 ? ',\r"output"' : ',"output"');
          lines.push({ text, value });
          parts.push(text + eol);
        }
      }
      const data = join(dir, "d.jsonl");
      writeFileSync(data, parts.join(""));
      const config = testConfig({
        "data.path": data,
        "model.path": model,
        "data.on_error": "skip",
        "score.out": join(dir, "s.arrow"),
        "select.out_dir": join(dir, "out"),
        "select.ratios": [0.5, 1],
      });
      await scoreOnly(config, quiet);
      const { manifest } = await selectAndWrite(config, quiet);
      const { cols } = await readScoresFile(join(dir, "s.arrow"));
      expect(cols.status, `seed ${seed}`).toHaveLength(lines.length);
      const unscored = readFileSync(join(dir, "out/unscored.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { row: number; status: string });
      const scored = cols.status.filter((s) => s === "ok" || s === "truncated").length;
      expect(scored + unscored.length, `seed ${seed}`).toBe(lines.length);
      expect(unscored.map((u) => u.row)).toEqual(lines.flatMap((l, i) => (l.value ? [] : [i])));
      for (const u of unscored) expect(u.status).toMatch(/^bad-row: malformed JSON/);
      for (const o of manifest.outputs) expect(o.rows.kept + o.rows.pruned + o.rows.unscored).toBe(lines.length);
      const all = await readParquetRows(join(dir, "out/flexrand-1/train.parquet"));
      expect(all).toHaveLength(scored);
      const inputs = lines.filter((l) => l.value).map((l) => l.value!);
      for (const [i, r] of all.entries()) {
        const { dlc: _dlc, ...rest } = plain(r) as Record<string, unknown>;
        expect(rest, `seed ${seed}`).toEqual(inputs[i]);
      }
    }
  });
});

it("no CLI call above printed a stack trace or an internal error", () => {
  const traced = calls.filter(({ r }) => /internal error|^\s+at .+[(:]\d+/m.test(r.stderr));
  expect(traced.map(({ args, r }) => `${args.join(" ")}\n${r.stderr}`)).toEqual([]);
  expect(calls.length).toBeGreaterThan(40);
});
