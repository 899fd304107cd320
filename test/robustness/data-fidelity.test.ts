// Issue 20's data cases: the kept Parquet holds every input column unchanged, with the input's types (JSON
// floats stay floats, -0.0 keeps its sign, timestamps their unit and time zone, columns their nullability);
// a damaged page (failing CRC), a duplicate column name, a "__proto__" nested in lists of structs, a row
// nested 10,000 deep in a .json array or one row of many megabytes are one-line errors naming the file and
// the row or column (or, with data.on_error: skip, an unscored bad row), within seconds.
// Scores are synthetic (no model runs) except where the CLI's whole run is the point.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { parquetWriteFile } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { setPath } from "../../src/config/load.js";
import { inspectData } from "../../src/data/inspect.js";
import { readRows, type RawRow } from "../../src/data/read.js";
import { DataSource } from "../../src/data/source.js";
import { selectAndWrite } from "../../src/run/select.js";
import { readScoresFile } from "../../src/contract/file.js";
import { runCli } from "../helpers/cli.js";
import { quiet, testConfig } from "../helpers/config.js";
import { parquetAsText } from "../helpers/duckdb.js";
import { alpacaRows, tinyModel } from "../helpers/fixtures.js";
import { writeSyntheticScores } from "../helpers/scores.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-fidelity-");
/** Never opened: select and write need no model. */
const noModel = join(tmp, "no-model");

/** Keeps every row of `data` (synthetic scores, ratio 1): the kept file's path. */
async function keepAll(data: string, rows: number, name: string): Promise<string> {
  const out = join(tmp, name);
  const config = testConfig({
    "data.path": data,
    "model.path": noModel,
    "score.out": join(out, "s.arrow"),
    "select.out_dir": out,
    "select.ratios": [1],
  });
  await writeSyntheticScores(config.score.out, data, rows);
  await selectAndWrite(config, quiet);
  return join(out, "flexrand-1/train.parquet");
}

/** The output's columns and values as DuckDB reads them, without the score column. */
async function withoutDlc(path: string) {
  const { types, rows } = await parquetAsText(path);
  const { dlc: _t, ...rest } = types;
  return { types: rest, rows: rows.map(({ dlc: _d, ...r }) => r) };
}

async function allRows(path: string): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  for await (const r of readRows(path)) rows.push(r);
  return rows;
}

/** A YAML recipe in `dir` from dotted keys: its name. */
function recipe(dir: string, keys: Record<string, unknown>): string {
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(keys)) setPath(doc, k, v);
  writeFileSync(join(dir, "recipe.yaml"), YAML.stringify(doc));
  return "recipe.yaml";
}

/** python3 with pyarrow (PYARROW_PYTHON names another interpreter), or undefined. */
const python = [process.env.PYARROW_PYTHON, "python3"].find((p) => p && spawnSync(p, ["-c", "import pyarrow"]).status === 0);
const withPyarrow = python ? describe : describe.skip;
const pyarrowNote = python ? "" : " [skipped: needs python3 with pyarrow (or PYARROW_PYTHON) to write and check Parquet files]";

function py(script: string, cwd: string): string {
  const r = spawnSync(python!, ["-c", script], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe("4: the kept Parquet holds the input's columns with the input's types", () => {
  it("JSONL: numbers written with a fraction stay DOUBLE (1.0, 2.0, 2e3), -0.0 keeps its sign, integers stay BIGINT, JSON text keeps 1.0", async () => {
    const data = join(tmp, "numbers.jsonl");
    writeFileSync(
      data,
      [
        '{"instruction":"a0","output":"b0","f":1.0,"z":-0.0,"e":2e3,"n":3,"mixed":{"k":1.0},"nested":{"x":1.0},"list":[1.0,2.0]}',
        '{"instruction":"a1","output":"b1","f":2.0,"z":0.5,"e":1,"n":4,"mixed":"text","nested":{"x":2.5},"list":[3.0]}',
        '{"instruction":"a2 1.5","output":"b2","f":3.0,"z":-0,"e":5,"n":-7,"mixed":[1,2.50],"nested":{"x":-0.0},"list":[]}',
      ].join("\n") + "\n",
    );
    const { types, rows } = await withoutDlc(await keepAll(data, 3, "out-numbers"));
    expect(types).toEqual({
      instruction: "VARCHAR",
      output: "VARCHAR",
      f: "DOUBLE",
      z: "DOUBLE",
      e: "DOUBLE",
      n: "BIGINT",
      mixed: expect.stringMatching(/^(JSON|VARCHAR)$/),
      nested: "STRUCT(x DOUBLE)",
      list: "DOUBLE[]",
    });
    expect(rows.map((r) => [r.f, r.z, r.e, r.n, r.mixed, r.nested, r.list])).toEqual([
      ["1.0", "-0.0", "2000.0", "3", '{"k":1.0}', "{'x': 1.0}", "[1.0, 2.0]"],
      ["2.0", "0.5", "1.0", "4", '"text"', "{'x': 2.5}", "[3.0]"],
      ["3.0", "-0.0", "5.0", "-7", "[1,2.50]", "{'x': -0.0}", "[]"],
    ]);
  });

  it("Parquet: timestamps keep their unit (ms, µs, ns) and UTC flag, and every other type, nullability and value is as in the input", async () => {
    const data = join(tmp, "types.parquet");
    const n = 5;
    const at = (i: number) => 1_700_000_000_123_456_789n + BigInt(i) * 1_000_000_001n;
    parquetWriteFile({
      filename: data,
      columnData: [
        { name: "instruction", data: Array.from({ length: n }, (_, i) => `Say ${i}`) },
        { name: "output", data: Array.from({ length: n }, (_, i) => (i === 2 ? null : `Out ${i}`)) },
        { name: "ts_ns_utc", data: Array.from({ length: n }, (_, i) => at(i)) },
        { name: "ts_us_local", data: Array.from({ length: n }, (_, i) => at(i) / 1000n) },
        { name: "ts_ms", data: Array.from({ length: n }, (_, i) => at(i) / 1_000_000n) },
        { name: "day", data: Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 1, 28 + i))) },
        { name: "i8", data: Array.from({ length: n }, (_, i) => -128 + i) },
        { name: "u32", data: Array.from({ length: n }, (_, i) => 4_000_000_000 + i) },
        { name: "f32", data: Array.from({ length: n }, (_, i) => (i === 1 ? -0 : i + 0.5)) },
        { name: "f64", data: Array.from({ length: n }, (_, i) => (i === 3 ? -0 : 1 / (i + 3))) },
        { name: "meta", data: Array.from({ length: n }, (_, i) => ({ a: 1.5 * i, b: [1.0, i] })) },
      ],
      schema: [
        { name: "root", num_children: 11 },
        { name: "instruction", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
        { name: "output", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        {
          name: "ts_ns_utc",
          type: "INT64",
          logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "NANOS" },
          repetition_type: "REQUIRED",
        },
        {
          name: "ts_us_local",
          type: "INT64",
          logical_type: { type: "TIMESTAMP", isAdjustedToUTC: false, unit: "MICROS" },
          repetition_type: "OPTIONAL",
        },
        { name: "ts_ms", type: "INT64", converted_type: "TIMESTAMP_MILLIS", repetition_type: "OPTIONAL" },
        { name: "day", type: "INT32", converted_type: "DATE", repetition_type: "OPTIONAL" },
        { name: "i8", type: "INT32", converted_type: "INT_8", repetition_type: "REQUIRED" },
        { name: "u32", type: "INT32", converted_type: "UINT_32", repetition_type: "OPTIONAL" },
        { name: "f32", type: "FLOAT", repetition_type: "REQUIRED" },
        { name: "f64", type: "DOUBLE", repetition_type: "OPTIONAL" },
        { name: "meta", type: "BYTE_ARRAY", converted_type: "JSON", repetition_type: "OPTIONAL" },
      ],
    });
    const input = await parquetAsText(data);
    expect([input.types.ts_ns_utc, input.types.ts_us_local, input.types.ts_ms]).toEqual(
      ["TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"].map((t) => expect.stringContaining(t.split(" ")[0]!)),
    );
    const output = await withoutDlc(await keepAll(data, n, "out-types"));
    expect(output.types).toEqual(input.types);
    expect(output.rows).toEqual(input.rows);
    // DuckDB reads nanoseconds as microseconds: the schema and the stored integers say the rest.
    const kept = join(tmp, "out-types/flexrand-1/train.parquet");
    const leaf = async (f: string) =>
      (await parquetMetadataAsync(await asyncBufferFromFile(f))).schema
        .filter((e) => e.name.startsWith("ts_"))
        .map(({ name, type, converted_type, logical_type, repetition_type }) => ({
          name,
          type,
          converted_type,
          logical_type,
          repetition_type,
        }));
    expect(await leaf(kept)).toEqual(await leaf(data));
    const raw = async (f: string) =>
      (
        await parquetReadObjects({
          file: await asyncBufferFromFile(f),
          columns: ["ts_ns_utc", "ts_us_local", "ts_ms"],
          parsers: { timestampFromNanoseconds: String, timestampFromMicroseconds: String, timestampFromMilliseconds: String },
        })
      ).map((r) => Object.values(r));
    expect(await raw(kept)).toEqual(await raw(data));
    expect((await raw(kept))[0]).toEqual(["1700000000123456789", "1700000000123456", "1700000000123"]);
  });

  withPyarrow(`pyarrow reads the kept file back as the input, type for type, with checksums verified${pyarrowNote}`, () => {
    it("every Arrow type the readers accept, nullable or not, nested", async () => {
      const dir = join(tmp, "pa");
      mkdirSync(dir, { recursive: true });
      const make = `
import pyarrow as pa, pyarrow.parquet as pq, datetime
n = 7
rows = range(n)
schema = pa.schema([
  pa.field("instruction", pa.string(), nullable=False),
  pa.field("output", pa.string()),
  pa.field("ts_ns", pa.timestamp("ns", tz="UTC")),
  pa.field("ts_us", pa.timestamp("us")),
  pa.field("ts_ms", pa.timestamp("ms", tz="UTC"), nullable=False),
  pa.field("day", pa.date32()),
  pa.field("t_us", pa.time64("us")),
  pa.field("i8", pa.int8()), pa.field("i16", pa.int16(), nullable=False), pa.field("u8", pa.uint8()), pa.field("u16", pa.uint16()), pa.field("u32", pa.uint32()),
  pa.field("i64", pa.int64(), nullable=False), pa.field("f32", pa.float32()), pa.field("f64", pa.float64()),
  pa.field("flag", pa.bool_()), pa.field("blob", pa.binary()),
  pa.field("tags", pa.list_(pa.field("element", pa.int32(), nullable=False))),
  pa.field("grid", pa.list_(pa.list_(pa.struct([("a", pa.int32()), ("b", pa.string())])))),
  pa.field("meta", pa.struct([pa.field("x", pa.float64(), nullable=False), pa.field("note", pa.string())])),
])
t = pa.table({
  "instruction": [f"Say {i}" for i in rows],
  "output": [None if i == 3 else f"Out {i}" for i in rows],
  "ts_ns": [1700000000123456789 + i for i in rows],
  "ts_us": [None if i == 2 else 1700000000123456 + i for i in rows],
  "ts_ms": [1700000000123 + i for i in rows],
  "day": [19000 + i for i in rows],
  "t_us": [3600000000 + i for i in rows],
  "i8": [-128 + i for i in rows], "i16": [i * 1000 for i in rows], "u8": [255 - i for i in rows], "u16": [65535 - i for i in rows], "u32": [4294967295 - i for i in rows],
  "i64": [-(2**52) + i for i in rows], "f32": [-0.0 if i == 1 else i / 4 for i in rows], "f64": [float("nan") if i == 4 else -0.0 if i == 2 else 1 / (i + 3) for i in rows],
  "flag": [None if i == 5 else i % 2 == 0 for i in rows], "blob": [bytes([0, 255, i]) for i in rows],
  "tags": [None if i == 6 else list(range(i)) for i in rows],
  "grid": [[[{"a": i, "b": None}], [], None] for i in rows],
  "meta": [{"x": i + 0.5, "note": None if i % 2 else "n"} for i in rows],
}, schema=schema)
pq.write_table(t, "in.parquet", write_page_checksum=True, row_group_size=3)
`;
      py(make, dir);
      const kept = await keepAll(join(dir, "in.parquet"), 7, "out-pa");
      const check = `
import pyarrow.parquet as pq, sys
a = pq.read_table("in.parquet", page_checksum_verification=True)
b = pq.read_table(sys.argv[1], page_checksum_verification=True).drop_columns(["dlc"])
# The time zone's name lives in pyarrow's own metadata (ARROW:schema); Parquet keeps UTC or local time.
a = a.replace_schema_metadata(None)
b = b.replace_schema_metadata(None)
for fa, fb in zip(a.schema, b.schema):
    if not fa.equals(fb): print("field", fa, "|", fb)
if a.schema.names != b.schema.names: print("names", a.schema.names, b.schema.names)
for n in a.column_names:
    x, y = a.column(n).combine_chunks(), b.column(n).combine_chunks()
    # (equals says NaN differs from NaN; repr tells NaN and -0.0 apart from the rest)
    if not x.equals(y) and [repr(v) for v in x.to_pylist()] != [repr(v) for v in y.to_pylist()]: print("values differ", n)
import math
za, zb = a.column("f64")[2].as_py(), b.column("f64")[2].as_py()
if not (za == 0 and math.copysign(1, za) < 0 and math.copysign(1, zb) < 0): print("negative zero", za, zb)
print("done")
`;
      const r = spawnSync(python!, ["-c", check, kept], { cwd: dir, encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("done");
    });

    it("a data page whose CRC fails is refused, naming the file, the row group and the column", async () => {
      const dir = join(tmp, "crc");
      mkdirSync(dir, { recursive: true });
      // Uncompressed, no dictionary: a flipped byte is still readable text, so only the checksum tells.
      const where = py(
        `
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"instruction": [f"Say {i}" for i in range(20)], "output": [f"Answer number {i}" for i in range(20)]}), "in.parquet", write_page_checksum=True, compression="NONE", use_dictionary=False)
c = pq.ParquetFile("in.parquet").metadata.row_group(0).column(1)
print(c.data_page_offset + c.total_compressed_size - 2)
`,
        dir,
      );
      const file = join(dir, "in.parquet");
      const bytes = readFileSync(file);
      const at = Number(where.trim());
      expect(String.fromCharCode(bytes[at]!)).toMatch(/\d/);
      bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31; // one digit for another: still valid UTF-8 text
      writeFileSync(file, bytes);
      await expect(allRows(file)).rejects.toThrow(`${file}: row group 0 (rows 0-19), column output: the page at byte`);
      await expect(allRows(file)).rejects.toThrow("fails its CRC checksum");
    });

    it("two columns with one name, and __proto__ nested in list<list<struct>>, are refused by name", async () => {
      const dir = join(tmp, "names");
      mkdirSync(dir, { recursive: true });
      py(
        `
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), pa.array(["x", "y"]), pa.array([1, 2])], names=["instruction", "output", "output"]), "twice.parquet")
deep = pa.list_(pa.list_(pa.struct([("a", pa.int32()), ("__proto__", pa.string())])))
pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", "y"], "deep": pa.array([[[{"a": 1, "__proto__": "p"}]], []], deep)}), "proto.parquet")
`,
        dir,
      );
      await expect(allRows(join(dir, "twice.parquet"))).rejects.toThrow(`${join(dir, "twice.parquet")}: two columns are named "output"`);
      await expect(allRows(join(dir, "proto.parquet"))).rejects.toThrow(
        `${join(dir, "proto.parquet")}: column deep.list.element.list.element.__proto__ cannot be read or written`,
      );
    });
  });

  it("a Parquet type that cannot be written back exactly is refused, naming the column and its type", async () => {
    const data = join(tmp, "decimal.parquet");
    parquetWriteFile({
      filename: data,
      columnData: [
        { name: "instruction", data: ["a", "b"] },
        { name: "output", data: ["x", "y"] },
        { name: "price", data: [12345n, 99n] },
      ],
      schema: [
        { name: "root", num_children: 3 },
        { name: "instruction", type: "BYTE_ARRAY", converted_type: "UTF8" },
        { name: "output", type: "BYTE_ARRAY", converted_type: "UTF8" },
        {
          name: "price",
          type: "INT64",
          converted_type: "DECIMAL",
          scale: 2,
          precision: 18,
          logical_type: { type: "DECIMAL", scale: 2, precision: 18 },
        },
      ],
    });
    // (hyparquet reads a DECIMAL as a float: 123.45 as 123.45000000000000284...)
    await expect(inspectData(new DataSource(testConfig({ "data.path": data }).data), null)).rejects.toThrow(
      `${data}: column price has type INT64/DECIMAL/DECIMAL(scale 2, precision 18), which dlc-prune cannot write back exactly`,
    );
  });
});

describe("8: a row of many megabytes is a bad row within seconds, its line never held whole", () => {
  let model: string;
  beforeAll(async () => {
    model = await tinyModel();
  });

  it("fail: one line naming file:line and the limit; skip: unscored with the reason", async () => {
    const dir = join(tmp, "huge");
    mkdirSync(dir, { recursive: true });
    const rows = alpacaRows(6).map((r) => JSON.stringify(r));
    rows[2] = JSON.stringify({ instruction: "Repeat.", input: "", output: "word ".repeat(3 * 1024 * 1024) }); // 15 MiB
    writeFileSync(join(dir, "d.jsonl"), rows.join("\n") + "\n");
    const args = [
      "run",
      "--config",
      recipe(dir, {
        "data.path": "d.jsonl",
        "model.path": model,
        "score.out": "out/s.arrow",
        "select.out_dir": "out",
        "select.ratios": [1],
      }),
    ];
    const t0 = Date.now();
    const fail = runCli(args, { cwd: dir });
    expect(fail.status, fail.stderr).toBe(1);
    const lines = fail.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("dlc-prune: error: "));
    expect(lines).toHaveLength(1);
    const bytes = Buffer.byteLength(rows[2]!);
    expect(lines[0]).toBe(
      `dlc-prune: error: d.jsonl:3: the row is ${bytes} bytes long (15 MiB), more than the 8 MiB a row may hold; shorten or remove it (data.on_error: skip keeps such rows unscored)`,
    );
    const skip = runCli([...args, "--set", "data.on_error=skip"], { cwd: dir });
    expect(skip.status, skip.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    const { cols } = await readScoresFile(join(dir, "out/s.arrow"));
    expect(cols.status).toEqual([
      "ok",
      "ok",
      `bad-row: the row is ${bytes} bytes long (15 MiB), more than the 8 MiB a row may hold; shorten or remove it`,
      "ok",
      "ok",
      "ok",
    ]);
    const unscored = readFileSync(join(dir, "out/unscored.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(unscored).toEqual([{ row: 2, status: cols.status[2], where: "d.jsonl:3" }]);
  }, 120_000);

  it("in a .json array and in Parquet the same limit holds, by bytes of the element and characters of text", async () => {
    const json = join(tmp, "huge.json");
    const big = "x".repeat(9 * 1024 * 1024);
    writeFileSync(
      json,
      JSON.stringify([
        { instruction: "a", output: "b" },
        { instruction: "c", output: big },
      ]),
    );
    const rows = await allRows(json);
    const bytes = Buffer.byteLength(JSON.stringify({ instruction: "c", output: big }));
    expect(rows.map((r) => r.error)).toEqual([
      undefined,
      `the row is ${bytes} bytes long (9 MiB), more than the 8 MiB a row may hold; shorten or remove it`,
    ]);
    const pq = join(tmp, "huge.parquet");
    parquetWriteFile({
      filename: pq,
      columnData: [
        { name: "instruction", data: ["a", "c"], type: "STRING" },
        { name: "output", data: ["b", big], type: "STRING" },
      ],
    });
    expect((await allRows(pq)).map((r) => r.error)).toEqual([
      undefined,
      "field output makes the row longer than the 8 MiB a row may hold; shorten or remove it",
    ]);
  });
});

describe("9: nesting 10,000 deep in a .json array is a bad row, not a stack overflow", () => {
  it("the row is named with its reason; the others are read", async () => {
    const data = join(tmp, "deep.json");
    const deep = `{"instruction":"a","output":"b","deep":${"[".repeat(10000)}${"]".repeat(10000)}}`;
    writeFileSync(
      data,
      `[\n${JSON.stringify({ instruction: "x", output: "y" })},\n${deep},\n${JSON.stringify({ instruction: "z", output: "w", n: 1.5 })}\n]\n`,
    );
    const rows = await allRows(data);
    expect(rows.map((r) => [r.where, r.error])).toEqual([
      [`${data}[0] (line 2, column 1)`, undefined],
      [`${data}[1] (line 3, column 1)`, expect.stringMatching(/^field deep(\[0\])+ is nested deeper than 64 levels$/)],
      [`${data}[2] (line 4, column 1)`, undefined],
    ]);
    expect(rows[2]!.value).toEqual({ instruction: "z", output: "w", n: 1.5 });
  });
});

describe("11: data errors say where, in lines and columns, and why", () => {
  it("malformed JSON is placed by line and column, not by byte position", async () => {
    const jsonl = join(tmp, "bad.jsonl");
    writeFileSync(jsonl, '{"instruction":"a","output":"b"}\n{"instruction":"a","output": }\n{"instruction": "a" "output": "b"}\n');
    const rows = await allRows(jsonl);
    expect(rows.map((r) => r.error)).toEqual([
      undefined,
      "malformed JSON (Object value expected after ':' at column 30)",
      "malformed JSON (Expected ',' or '}' after property value at column 21)",
    ]);
    const json = join(tmp, "bad.json");
    writeFileSync(json, '[\n  {"instruction":"a","output":"b"},\n  {"instruction":"a","output": }\n]\n');
    expect((await allRows(json)).map((r) => [r.where, r.error])).toEqual([
      [`${json}[0] (line 2, column 3)`, undefined],
      [`${json}[1] (line 3, column 3)`, "malformed JSON (Object value expected after ':' at line 3, column 32)"],
    ]);
    const broken = join(tmp, "broken.json");
    writeFileSync(broken, '[\n  {"instruction":"a","output":"b"},\n  {"instruction":"a","output": "never closed}\n]\n');
    await expect(allRows(broken)).rejects.toThrow(`${broken}: malformed JSON at line 3, column 32: a string that never ends; fix the file`);
  });

  it("a folder given as the data file, and a file of which no row can be read, say so with the first row's reason", async () => {
    const dir = join(tmp, "msgs");
    mkdirSync(join(dir, "rows.jsonl"), { recursive: true });
    const model = await tinyModel();
    const cfg = recipe(dir, { "data.path": "rows.jsonl", "model.path": model, "score.out": "o/s.arrow", "select.out_dir": "o" });
    const folder = runCli(["run", "--config", cfg], { cwd: dir });
    expect(folder.stderr.trim()).toBe("dlc-prune: error: rows.jsonl: is a folder, expected a file");
    writeFileSync(join(dir, "bad.jsonl"), "{oops\n[1, 2]\n");
    const bad = runCli(["run", "--config", cfg, "--set", "data.path=bad.jsonl", "--set", "data.on_error=skip"], { cwd: dir });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe(
      "dlc-prune: error: bad.jsonl: no row could be read: all 2 rows are bad (the first, bad.jsonl:1: malformed JSON (Expected property name or '}' at column 2)); fix the file or check data.path",
    );
  }, 60_000);
});
