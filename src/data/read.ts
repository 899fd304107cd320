// Reading input rows as a stream: JSONL (one object per line), JSON (an array of objects) and Parquet
// (hyparquet + hyparquet-compressors, which read what pyarrow and Hugging Face datasets write).
// The input file is only ever opened for reading.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type SchemaTree } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { UserError, readingFile } from "../util/errors.js";

export type RowValue = Record<string, unknown>;

/** One input row: its 0-based index among the data rows, where it is (for messages), and its value or why not. */
export interface RawRow {
  row: number;
  where: string;
  value?: RowValue;
  error?: string;
  /** The text of a row that did not parse, so it can still be listed. */
  text?: string;
}

export type DataKind = "jsonl" | "json" | "parquet";

export function dataKind(path: string): DataKind {
  const lower = path.toLowerCase();
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".parquet")) return "parquet";
  throw new UserError(`${path}: unknown data file type; expected .jsonl, .json or .parquet`);
}

const isRow = (v: unknown): v is RowValue => typeof v === "object" && v !== null && !Array.isArray(v);

/** JSONL: blank lines are not rows; a line that is not a JSON object is a row with an error. */
async function* readJsonl(path: string): AsyncGenerator<RawRow> {
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  let row = 0;
  for await (const text of lines) {
    lineNo++;
    const line = lineNo === 1 ? text.replace(/^\uFEFF/, "") : text; // a UTF-8 byte order mark is not data
    if (line.trim() === "") continue;
    const where = `${path}:${lineNo}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      yield { row: row++, where, error: `malformed JSON (${(err as Error).message})`, text: line };
      continue;
    }
    yield isRow(value) ? { row: row++, where, value } : { row: row++, where, error: "expected a JSON object", text: line };
  }
}

async function* readJson(path: string): AsyncGenerator<RawRow> {
  let doc: unknown;
  try {
    doc = JSON.parse((await readFile(path, "utf8")).replace(/^\uFEFF/, ""));
  } catch (err) {
    throw new UserError(`${path}: malformed JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(doc)) throw new UserError(`${path}: expected a JSON array of row objects (or use .jsonl)`);
  for (let i = 0; i < doc.length; i++) {
    const value: unknown = doc[i];
    yield isRow(value) ? { row: i, where: `${path}[${i}]`, value } : { row: i, where: `${path}[${i}]`, error: "expected a JSON object" };
  }
}

async function openParquet(path: string) {
  try {
    const file = await asyncBufferFromFile(path);
    return { file, meta: await parquetMetadataAsync(file) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err;
    throw new UserError(`${path}: not a readable Parquet file (${(err as Error).message})`);
  }
}

/** A Parquet file's schema tree. */
export async function parquetSchemaOf(path: string): Promise<SchemaTree> {
  const { meta } = await readingFile(path, () => openParquet(path));
  return parquetSchema(meta);
}

/** Parquet, one row group at a time so memory stays bounded by the largest row group. */
async function* readParquet(path: string): AsyncGenerator<RawRow> {
  const { file, meta } = await openParquet(path);
  let start = 0;
  for (const group of meta.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata: meta, rowStart: start, rowEnd: end, compressors });
    for (let i = 0; i < rows.length; i++) yield { row: start + i, where: `${path} row ${start + i}`, value: rows[i] as RowValue };
    start = end;
  }
}

/** All rows of a data file, in order. */
export async function* readRows(path: string): AsyncGenerator<RawRow> {
  const kind = dataKind(path);
  const source = kind === "jsonl" ? readJsonl(path) : kind === "json" ? readJson(path) : readParquet(path);
  // Surface "file not found" as a one-line error naming the file, wherever the reader first touches it.
  const first = await readingFile(path, async () => source.next());
  if (first.done) return;
  yield first.value;
  yield* source;
}
