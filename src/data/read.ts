// Reading input rows as a stream: JSONL (one object per line), JSON (an array of objects) and Parquet
// (hyparquet + hyparquet-compressors, which read what pyarrow and Hugging Face datasets write).
// The input file is only ever opened for reading.
//
// A row whose values cannot be carried to the output unchanged is a bad row (an error naming the row and the
// field), never silently altered: bytes that are not UTF-8, lone UTF-16 surrogates, integers beyond 2^53
// (the Parquet writer would round them), or nesting deeper than MAX_DEPTH.
import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type FileMetaData, type SchemaTree } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { isInteger, isLosslessNumber, isSafeNumber, parse as parseLossless } from "lossless-json";
import { UserError, isSystemError, readingFile } from "../util/errors.js";

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

/** Deepest nesting of lists and objects a row may have (JSON, Parquet and the type inference all recurse). */
export const MAX_DEPTH = 64;

export function dataKind(path: string): DataKind {
  const lower = path.toLowerCase();
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".parquet")) return "parquet";
  throw new UserError(`${path}: unknown data file type; expected .jsonl, .json or .parquet`);
}

/** A row's own field (never an Object prototype property such as "constructor"). */
export function fieldOf(row: RowValue, key: string): unknown {
  return Object.hasOwn(row, key) ? row[key] : undefined;
}

const isRow = (v: unknown): v is RowValue => typeof v === "object" && v !== null && !Array.isArray(v);

/** A Parquet text value whose bytes are not UTF-8 (what a decoder would turn into U+FFFD). */
class InvalidUtf8 {
  constructor(readonly text: string) {}
}

/** Byte offset of the first invalid UTF-8 sequence, or -1 (for messages: isUtf8 says whether there is one). */
function invalidUtf8At(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (len === 0 || !isUtf8(bytes.subarray(i, i + len))) return i;
    i += len;
  }
  return -1;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The first reason `v` cannot be written unchanged, with the path to it; undefined when there is none. */
function problemIn(v: unknown, depth: number): { path: string; what: string } | undefined {
  const found = (what: string) => ({ path: "", what });
  if (typeof v === "string") return v.isWellFormed() ? undefined : found("holds a lone UTF-16 surrogate, which is not a character");
  if (typeof v === "bigint") return v > MAX_SAFE || v < -MAX_SAFE ? found(`holds the integer ${v}, beyond 2^53, which the Parquet writer cannot store exactly`) : undefined;
  if (v instanceof InvalidUtf8) return found("holds bytes that are not valid UTF-8");
  if (isLosslessNumber(v)) return isInteger(v.value) && !isSafeNumber(v.value) ? found(`holds the integer ${v.value}, beyond 2^53, which the Parquet writer cannot store exactly`) : undefined;
  if (v === null || typeof v !== "object" || v instanceof Date || ArrayBuffer.isView(v)) return undefined;
  if (depth >= MAX_DEPTH) return found(`is nested deeper than ${MAX_DEPTH} levels`);
  const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x]) : Object.entries(v).map(([k, x]) => [`.${k}`, x]);
  for (const [step, x] of entries) {
    const p = problemIn(x, depth + 1);
    if (p) return { path: step + p.path, what: p.what };
  }
  return undefined;
}

/** "field meta.tags[2] holds ...", for a row's value (or a lossless parse of it). */
function rowProblem(value: unknown): string | undefined {
  const p = problemIn(value, 0);
  return p && `field ${p.path.replace(/^\./, "")} ${p.what}`;
}

// A run of 16 digits can be an integer beyond 2^53 (9007199254740992 has 16): only such lines are parsed
// a second time, losslessly, to find it.
const LONG_DIGITS = /\d{16}/;

/** One JSON row's value, or why it is a bad row. */
function parseRow(text: string): { value: RowValue } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `malformed JSON (${(err as Error).message})` };
  }
  if (!isRow(value)) return { error: "expected a JSON object" };
  const problem = rowProblem(LONG_DIGITS.test(text) ? parseLossless(text) : value);
  return problem ? { error: problem } : { value };
}

/** The lines of a file split at "\n" only (JSON Lines: "\r" is whitespace inside a line, "\r\n" a line end). */
async function* byteLines(path: string, onBytes?: OnBytes): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    onBytes?.(chunk);
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) yield Buffer.concat(pending);
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** JSONL: blank lines are not rows; a line that is not a JSON object is a row with an error. */
async function* readJsonl(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  let lineNo = 0;
  let row = 0;
  for await (const raw of byteLines(path, onBytes)) {
    lineNo++;
    let bytes = lineNo === 1 && raw.subarray(0, 3).equals(BOM) ? raw.subarray(3) : raw; // a UTF-8 byte order mark is not data
    if (bytes.length && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, -1);
    const text = bytes.toString("utf8");
    if (text.trim() === "") continue;
    const where = `${path}:${lineNo}`;
    if (!isUtf8(bytes)) {
      yield { row: row++, where, error: `bytes that are not valid UTF-8 (at byte ${invalidUtf8At(bytes) + 1} of the line)`, text };
      continue;
    }
    const parsed = parseRow(text);
    yield "value" in parsed ? { row: row++, where, value: parsed.value } : { row: row++, where, error: parsed.error, text };
  }
}

async function* readJson(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  let bytes: Buffer = await readFile(path);
  onBytes?.(bytes);
  if (bytes.subarray(0, 3).equals(BOM)) bytes = bytes.subarray(3);
  if (!isUtf8(bytes)) throw new UserError(`${path}: bytes that are not valid UTF-8 at byte ${invalidUtf8At(bytes) + 1}; fix the file (or convert it to JSONL, where such rows can be skipped)`);
  const text = bytes.toString("utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: malformed JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(doc)) throw new UserError(`${path}: expected a JSON array of row objects (or use .jsonl)`);
  // As for JSONL: a long digit run may be an integer JSON.parse rounded; the lossless parse tells.
  const lossless = LONG_DIGITS.test(text) ? (parseLossless(text) as unknown[]) : undefined;
  for (let i = 0; i < doc.length; i++) {
    const value: unknown = doc[i];
    const where = `${path}[${i}]`;
    const problem = isRow(value) ? rowProblem(lossless ? lossless[i] : value) : "expected a JSON object";
    yield problem ? { row: i, where, error: problem, text: JSON.stringify(value) } : { row: i, where, value: value as RowValue };
  }
}

/** Text columns decode with a check: bytes that are not UTF-8 become a bad row, not U+FFFD. */
const decoder = new TextDecoder();
const parsers = {
  stringFromBytes: (bytes: Uint8Array | undefined) => (bytes && !isUtf8(bytes) ? new InvalidUtf8(decoder.decode(bytes)) : bytes && decoder.decode(bytes)) as string,
};

/** hyparquet's messages for a damaged file ("thrift unhandled type", a JavaScript TypeError) as a reason a user reads. */
function damaged(path: string, where: string, err: unknown): Error {
  if (isSystemError(err)) return err;
  const internal = err instanceof TypeError || err instanceof RangeError;
  return new UserError(`${path}: ${where} cannot be read: the file is damaged or truncated${internal ? "" : ` (${(err as Error).message.split("\n")[0]})`}`);
}

async function openParquet(path: string): Promise<{ file: Awaited<ReturnType<typeof asyncBufferFromFile>>; meta: FileMetaData }> {
  const file = await readingFile(path, () => asyncBufferFromFile(path));
  try {
    return { file, meta: await parquetMetadataAsync(file) };
  } catch (err) {
    throw damaged(path, "its footer (the Parquet metadata)", err);
  }
}

/** A Parquet file's schema tree. */
export async function parquetSchemaOf(path: string): Promise<SchemaTree> {
  const { meta } = await openParquet(path);
  try {
    return parquetSchema(meta);
  } catch (err) {
    throw damaged(path, "its schema", err);
  }
}

/** Parquet, one row group at a time so memory stays bounded by the largest row group. */
async function* readParquet(path: string): AsyncGenerator<RawRow> {
  const { file, meta } = await openParquet(path);
  let start = 0;
  for (const [g, group] of meta.row_groups.entries()) {
    const end = start + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      // utf8: false keeps un-annotated binary columns as their bytes; text columns go through `parsers`.
      rows = await parquetReadObjects({ file, metadata: meta, rowStart: start, rowEnd: end, compressors, utf8: false, parsers });
    } catch (err) {
      throw damaged(path, `row group ${g} (rows ${start}-${end - 1})`, err);
    }
    for (let i = 0; i < rows.length; i++) {
      const where = `${path} row ${start + i}`;
      const problem = rowProblem(rows[i]);
      yield problem ? { row: start + i, where, error: problem, text: JSON.stringify(rows[i], (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v instanceof InvalidUtf8 ? v.text : v)) } : { row: start + i, where, value: rows[i] as RowValue };
    }
    start = end;
  }
}

/** Sees every byte of a file read whole (JSON, JSONL), in order; a Parquet reader takes byte ranges instead. */
export type OnBytes = (chunk: Uint8Array) => void;

/** All rows of a data file, in order. */
export async function* readRows(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  const kind = dataKind(path);
  const source = kind === "jsonl" ? readJsonl(path, onBytes) : kind === "json" ? readJson(path, onBytes) : readParquet(path);
  // Surface "file not found" (or a folder, a symlink loop...) as a one-line error naming the file, wherever
  // the reader first touches it.
  const first = await readingFile(path, async () => source.next());
  if (first.done) return;
  yield first.value;
  yield* source;
}
