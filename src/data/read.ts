// Reading input rows as a stream: JSONL (one object per line), JSON (an array of objects) and Parquet
// (hyparquet + hyparquet-compressors, which read what pyarrow and Hugging Face datasets write).
// The input file is only ever opened for reading; every pass hands each of its bytes, in order, to `onBytes`
// (the data source hashes every pass, so a file that changes during a run is noticed).
//
// A row whose values cannot be carried to the output unchanged is a bad row (an error naming the row and the
// field), never silently altered: bytes that are not UTF-8, lone UTF-16 surrogates, integers beyond 2^53
// (the Parquet writer would round them), or nesting deeper than MAX_DEPTH. So is a row longer than
// MAX_ROW_BYTES: a JSONL reader never holds more of such a line than the limit.
import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { crc32 } from "node:zlib";
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type AsyncBuffer,
  type FileMetaData,
  type SchemaTree,
} from "hyparquet";
import { parquetHeader } from "hyparquet/src/column.js";
import { compressors } from "hyparquet-compressors";
import { isInteger, isLosslessNumber, isSafeNumber, parse as parseLossless } from "lossless-json";
import { UserError, isSystemError, readingFile } from "../util/errors.js";
import { formatBytes } from "../util/math.js";

export type RowValue = Record<string, unknown>;

/** One input row: its 0-based index among the data rows, where it is (for messages), and its value or why not. */
export interface RawRow {
  row: number;
  where: string;
  value?: RowValue;
  /** The row parsed by lossless-json (numbers with their text) when it holds a fraction, an exponent or a long integer: the column types and JSON text keep 1.0 a float. */
  lossless?: unknown;
  error?: string;
  /** The text of a row that did not parse, so it can still be listed. */
  text?: string;
}

export type DataKind = "jsonl" | "json" | "parquet";

/** Deepest nesting of lists and objects a row may have (JSON, Parquet and the type inference all recurse). */
export const MAX_DEPTH = 64;

/**
 * The most a row may hold: bytes of a JSON line or array element, characters of text in a Parquet row.
 * A longer row is a bad row (data.on_error), found before it is tokenized: far beyond any model's window
 * (a 128k-token window is about 0.5 MB of text), and small enough that reading and tokenizing it is quick.
 */
export const MAX_ROW_BYTES = 8 * 1024 * 1024;
const ROW_LIMIT = `the ${formatBytes(MAX_ROW_BYTES)} a row may hold; shorten or remove it`;
const tooLong = (n: number, what = "bytes") => `the row is ${n} ${what} long (${formatBytes(n)}), more than ${ROW_LIMIT}`;

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

/** A Parquet timestamp as stored (its integer in its unit), so microseconds and nanoseconds are written back exactly. */
export class Timestamp {
  constructor(
    readonly raw: bigint,
    readonly unit: "MILLIS" | "MICROS" | "NANOS",
  ) {}

  /** ISO 8601 with every stored digit (for ids, groups and listings). */
  toJSON(): string {
    const per = { MILLIS: 1000n, MICROS: 1_000_000n, NANOS: 1_000_000_000n }[this.unit];
    const digits = String(per).length - 1;
    const seconds = this.raw / per - (this.raw % per < 0n ? 1n : 0n);
    const fraction = this.raw - seconds * per;
    return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d+Z$/, `.${String(fraction).padStart(digits, "0")}Z`);
  }
}

/** A Parquet JSON value as its text, so the output holds the same JSON (1.0 stays 1.0). */
export class JsonText {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** Byte offset of the first invalid UTF-8 sequence, or -1 (for messages: isUtf8 says whether there is one). */
function invalidUtf8At(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (len === 0 || !isUtf8(bytes.subarray(i, i + len))) return i;
    i += len;
  }
  return -1;
}

/** "line 3, column 7" of a character offset in `text` (1-based, as editors count). */
export function lineColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let nl = text.indexOf("\n"); nl !== -1 && nl < offset; nl = text.indexOf("\n", nl + 1)) {
    line++;
    start = nl + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The first reason `v` cannot be written unchanged, with the path to it; undefined when there is none. `budget.chars`: text a row may still hold. */
function problemIn(v: unknown, depth: number, budget: { chars: number }): { path: string; what: string } | undefined {
  const found = (what: string) => ({ path: "", what });
  if (typeof v === "string") {
    if ((budget.chars -= v.length) < 0) return found(`makes the row longer than ${ROW_LIMIT}`);
    return v.isWellFormed() ? undefined : found("holds a lone UTF-16 surrogate, which is not a character");
  }
  if (typeof v === "bigint")
    return v > MAX_SAFE || v < -MAX_SAFE
      ? found(`holds the integer ${v}, beyond 2^53, which the Parquet writer cannot store exactly`)
      : undefined;
  if (v instanceof InvalidUtf8) return found("holds bytes that are not valid UTF-8");
  if (isLosslessNumber(v))
    return isInteger(v.value) && !isSafeNumber(v.value)
      ? found(`holds the integer ${v.value}, beyond 2^53, which the Parquet writer cannot store exactly`)
      : undefined;
  if (ArrayBuffer.isView(v)) return (budget.chars -= v.byteLength) < 0 ? found(`makes the row longer than ${ROW_LIMIT}`) : undefined;
  if (v instanceof JsonText) return (budget.chars -= v.text.length) < 0 ? found(`makes the row longer than ${ROW_LIMIT}`) : undefined;
  if (v === null || typeof v !== "object" || v instanceof Date || v instanceof Timestamp) return undefined;
  if (depth >= MAX_DEPTH) return found(`is nested deeper than ${MAX_DEPTH} levels`);
  const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x]) : Object.entries(v).map(([k, x]) => [`.${k}`, x]);
  for (const [step, x] of entries) {
    const p = problemIn(x, depth + 1, budget);
    if (p) return { path: step + p.path, what: p.what };
  }
  return undefined;
}

/** "field meta.tags[2] holds ...", for a row's value (or a lossless parse of it). */
function rowProblem(value: unknown): string | undefined {
  const p = problemIn(value, 0, { chars: MAX_ROW_BYTES });
  return p && `field ${p.path.replace(/^\./, "")} ${p.what}`;
}

// A run of 16 digits can be an integer beyond 2^53 (9007199254740992 has 16): only such rows are parsed a
// second time, losslessly, to find it. So are rows with a number written with a fraction or an exponent
// (1.0, 2e3): JSON.parse makes 1.0 the integer 1, and the column would be written as integers.
const LONG_DIGITS = /\d{16}/;
const DIGIT_THEN_FRACTION = /\d[.eE]/;

/** Whether a number outside the strings of JSON `text` has a fraction or an exponent (true, false and null have no digit before their e). */
function hasFractionOrExponent(text: string): boolean {
  if (!DIGIT_THEN_FRACTION.test(text)) return false;
  let from = 0;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (DIGIT_THEN_FRACTION.test(text.slice(from, quote === -1 ? undefined : quote))) return true;
    if (quote === -1) return false;
    from = stringEnd(text, quote);
    if (from === -1) return false;
  }
}

/** The offset after the string that starts (with its quote) at `quote`; -1 when it never ends. */
function stringEnd(text: string, quote: number): number {
  for (let i = text.indexOf('"', quote + 1); i !== -1; i = text.indexOf('"', i + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(i - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return i + 1;
  }
  return -1;
}

/** Why `text` is not JSON, its place in words: V8's message, or (where V8 gives no position) lossless-json's. */
function malformed(text: string, err: unknown, at: (position: number) => string): string {
  let message = (err as Error).message;
  if (!/ at position \d+/.test(message))
    try {
      parseLossless(text);
    } catch (e) {
      if (!(e instanceof RangeError)) message = (e as Error).message;
    }
  return `malformed JSON (${message.replace(/(?: in JSON)? at position (\d+)(?: \(line \d+ column \d+\))?/, (_m, n: string) => ` at ${at(Number(n))}`)})`;
}

/** One JSON row's value (and its lossless parse where numbers need their text), or why it is a bad row. `at`: a position in words. */
function parseRow(text: string, at: (position: number) => string): { value: RowValue; lossless?: unknown } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: malformed(text, err, at) };
  }
  if (!isRow(value)) return { error: "expected a JSON object" };
  // Checked on the plain parse first: its depth bounds the lossless parser's recursion.
  const problem = rowProblem(value);
  if (problem) return { error: problem };
  if (!LONG_DIGITS.test(text) && !hasFractionOrExponent(text)) return { value };
  const lossless = parseLossless(text);
  const exact = rowProblem(lossless);
  return exact ? { error: exact } : { value, lossless };
}

/** A line longer than MAX_ROW_BYTES: only its length was kept. */
interface LongLine {
  bytes: number;
}

/**
 * The lines of a file split at "\n" only (JSON Lines: "\r" is whitespace inside a line, "\r\n" a line end).
 * A line longer than `limit` is skipped to its end and reported by its length, never held whole.
 */
async function* byteLines(path: string, limit: number, onBytes?: OnBytes): AsyncGenerator<Buffer | LongLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping: LongLine | undefined;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    onBytes?.(chunk);
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      if (skipping) {
        skipping.bytes += nl - start;
        yield skipping;
        skipping = undefined;
      } else if (pendingBytes + nl - start > limit) yield { bytes: pendingBytes + nl - start };
      else {
        pending.push(chunk.subarray(start, nl));
        yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      }
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start === chunk.length) continue;
    if (skipping) skipping.bytes += chunk.length - start;
    else if (pendingBytes + chunk.length - start > limit) {
      skipping = { bytes: pendingBytes + chunk.length - start };
      pending = [];
      pendingBytes = 0;
    } else {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
  }
  if (skipping) yield skipping;
  else if (pending.length) yield Buffer.concat(pending);
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** JSONL: blank lines are not rows; a line that is not a JSON object is a row with an error. */
async function* readJsonl(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  let lineNo = 0;
  let row = 0;
  // The "\r" of a "\r\n" line end and a byte order mark are not counted against the limit.
  for await (const raw of byteLines(path, MAX_ROW_BYTES + 4, onBytes)) {
    lineNo++;
    const where = `${path}:${lineNo}`;
    if (!Buffer.isBuffer(raw)) {
      yield { row: row++, where, error: tooLong(raw.bytes) };
      continue;
    }
    let bytes = lineNo === 1 && raw.subarray(0, 3).equals(BOM) ? raw.subarray(3) : raw; // a UTF-8 byte order mark is not data
    if (bytes.length && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, -1);
    const text = bytes.toString("utf8");
    if (text.trim() === "") continue;
    if (bytes.length > MAX_ROW_BYTES) {
      yield { row: row++, where, error: tooLong(bytes.length) };
      continue;
    }
    if (!isUtf8(bytes)) {
      yield { row: row++, where, error: `bytes that are not valid UTF-8 (at byte ${invalidUtf8At(bytes) + 1} of the line)`, text };
      continue;
    }
    const parsed = parseRow(text, (n) => `column ${n + 1}`);
    yield "error" in parsed
      ? { row: row++, where, error: parsed.error, text }
      : { row: row++, where, value: parsed.value, ...(parsed.lossless !== undefined ? { lossless: parsed.lossless } : {}) };
  }
}

/** Skips JSON whitespace from `i`. */
function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  return i;
}

/**
 * The elements of a JSON array document as [start, end) offsets, found without parsing them (so one that
 * is nested deeply, too long or malformed is a bad row of its own, as in JSONL). Throws where the array
 * itself is broken.
 */
function arrayElements(text: string, path: string): [number, number][] {
  const fail = (at: number, what: string) =>
    new UserError(
      `${path}: malformed JSON at ${lineColumn(text, at)}: ${what}; fix the file (or convert it to JSONL, where bad rows can be skipped)`,
    );
  let i = skipSpace(text, 0);
  if (text[i] !== "[") throw new UserError(`${path}: expected a JSON array of row objects (or use .jsonl)`);
  const elements: [number, number][] = [];
  i = skipSpace(text, i + 1);
  if (text[i] === "]") return checkEnd(text, i + 1, fail, elements);
  for (;;) {
    const start = i;
    let depth = 0;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '"') {
        const end = stringEnd(text, i);
        if (end === -1) throw fail(i, "a string that never ends");
        i = end - 1;
      } else if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") {
        if (depth === 0) break;
        depth--;
      } else if (c === "," && depth === 0) break;
    }
    if (i >= text.length) throw fail(text.length, "the array never ends (a missing ']'?)");
    let end = i;
    while (end > start && /\s/.test(text[end - 1]!)) end--;
    if (end === start) throw fail(start, "an empty element (two commas, or a comma before ']')");
    elements.push([start, end]);
    if (text[i] === "]") return checkEnd(text, i + 1, fail, elements);
    if (text[i] === "}") throw fail(i, "a '}' without its '{'");
    i = skipSpace(text, i + 1);
  }
}

function checkEnd(text: string, i: number, fail: (at: number, what: string) => Error, elements: [number, number][]): [number, number][] {
  const after = skipSpace(text, i);
  if (after < text.length) throw fail(after, "text after the array's closing ']'");
  return elements;
}

async function* readJson(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  let bytes: Buffer = await readFile(path);
  onBytes?.(bytes);
  if (bytes.subarray(0, 3).equals(BOM)) bytes = bytes.subarray(3);
  if (!isUtf8(bytes)) {
    const at = invalidUtf8At(bytes);
    throw new UserError(
      `${path}: bytes that are not valid UTF-8 at ${lineColumn(bytes.subarray(0, at).toString("utf8"), at)} (byte ${at + 1}); fix the file (or convert it to JSONL, where such rows can be skipped)`,
    );
  }
  const text = bytes.toString("utf8");
  for (const [i, [start, end]] of arrayElements(text, path).entries()) {
    const where = `${path}[${i}] (${lineColumn(text, start)})`;
    const element = text.slice(start, end);
    if (Buffer.byteLength(element) > MAX_ROW_BYTES) {
      yield { row: i, where, error: tooLong(Buffer.byteLength(element)) };
      continue;
    }
    const parsed = parseRow(element, (n) => lineColumn(text, start + n));
    yield "error" in parsed
      ? { row: i, where, error: parsed.error, text: element }
      : { row: i, where, value: parsed.value, ...(parsed.lossless !== undefined ? { lossless: parsed.lossless } : {}) };
  }
}

/** Text columns decode with a check: bytes that are not UTF-8 become a bad row, not U+FFFD; timestamps and JSON keep what is stored. */
const decoder = new TextDecoder();
const text = (bytes: Uint8Array | undefined) =>
  bytes && !isUtf8(bytes) ? new InvalidUtf8(decoder.decode(bytes)) : bytes && decoder.decode(bytes);
const parsers = {
  stringFromBytes: text as (bytes: Uint8Array) => string,
  jsonFromBytes: (bytes: Uint8Array) => {
    const t = text(bytes);
    return typeof t === "string" ? new JsonText(t) : t;
  },
  timestampFromMilliseconds: (v: bigint) => new Timestamp(BigInt(v), "MILLIS"),
  timestampFromMicroseconds: (v: bigint) => new Timestamp(BigInt(v), "MICROS"),
  timestampFromNanoseconds: (v: bigint) => new Timestamp(BigInt(v), "NANOS"),
};

/** hyparquet's messages for a damaged file ("thrift unhandled type", a JavaScript TypeError) as a reason a user reads. */
function damaged(path: string, where: string, err: unknown): Error {
  if (isSystemError(err) || err instanceof UserError) return err;
  const internal = err instanceof TypeError || err instanceof RangeError;
  return new UserError(
    `${path}: ${where} cannot be read: the file is damaged or truncated${internal ? "" : ` (${(err as Error).message.split("\n")[0]})`}`,
  );
}

/** Names hyparquet cannot assemble rows with (object keys that are JavaScript's own), and names given twice. */
function checkNames(node: SchemaTree, path: string, prefix: string): void {
  const seen = new Set<string>();
  for (const child of node.children) {
    const name = child.element.name;
    if (name === "__proto__")
      throw new UserError(
        `${path}: column ${prefix}__proto__ cannot be read or written (the name is JavaScript's prototype key); rename the field`,
      );
    if (seen.has(name))
      throw new UserError(`${path}: two columns are named "${prefix}${name}"; rename one (e.g. with pyarrow) so each has its own name`);
    seen.add(name);
    checkNames(child, path, `${prefix}${name}.`);
  }
}

async function openParquet(path: string): Promise<{ file: AsyncBuffer; meta: FileMetaData; schema: SchemaTree }> {
  const file = await readingFile(path, () => asyncBufferFromFile(path));
  let meta: FileMetaData;
  try {
    meta = await parquetMetadataAsync(file);
  } catch (err) {
    throw damaged(path, "its footer (the Parquet metadata)", err);
  }
  let schema: SchemaTree;
  try {
    schema = parquetSchema(meta);
  } catch (err) {
    throw damaged(path, "its schema", err);
  }
  checkNames(schema, path, "");
  return { file, meta, schema };
}

/** A Parquet file's schema tree. */
export async function parquetSchemaOf(path: string): Promise<SchemaTree> {
  return (await openParquet(path)).schema;
}

/** Every page of a column chunk whose header carries a CRC-32 must match it (what pyarrow checks when asked to). */
function checkPageCrcs(chunk: Uint8Array, path: string, where: string): void {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const reader = { view, offset: 0 };
  while (reader.offset < chunk.byteLength) {
    const at = reader.offset;
    const header = parquetHeader(reader);
    const end = reader.offset + header.compressed_page_size;
    if (header.compressed_page_size < 0 || end > chunk.byteLength) throw new Error("page beyond its column chunk");
    if (header.crc !== undefined && crc32(chunk.subarray(reader.offset, end)) !== header.crc >>> 0)
      throw new UserError(
        `${path}: ${where}: the page at byte ${at} fails its CRC checksum: the file is damaged; restore it from its source`,
      );
    reader.offset = end;
  }
}

/** Parquet, one row group at a time so memory stays bounded by the largest row group. */
async function* readParquet(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  const { file, meta } = await openParquet(path);
  // Every byte is hashed once, in order: the row groups' bytes as they are read, the rest (header, indexes, footer) around them.
  let hashed = 0;
  const hashTo = async (end: number, bytes?: { start: number; data: Uint8Array }) => {
    if (!onBytes || end <= hashed) return;
    if (bytes && hashed >= bytes.start) onBytes(bytes.data.subarray(hashed - bytes.start, end - bytes.start));
    else onBytes(new Uint8Array(await file.slice(hashed, end)));
    hashed = end;
  };
  let start = 0;
  for (const [g, group] of meta.row_groups.entries()) {
    const end = start + Number(group.num_rows);
    const where = `row group ${g} (rows ${start}-${end - 1})`;
    let rows: Record<string, unknown>[];
    try {
      const chunks = group.columns.map((c) => {
        const m = c.meta_data!;
        const from = Number(m.dictionary_page_offset ?? m.data_page_offset);
        return { name: m.path_in_schema.join("."), from, to: from + Number(m.total_compressed_size) };
      });
      const from = Math.min(...chunks.map((c) => c.from));
      const to = Math.max(...chunks.map((c) => c.to));
      if (!(from >= 0 && to <= file.byteLength && from <= to)) throw new Error("column chunks beyond the file");
      const data = new Uint8Array(await file.slice(from, to));
      if (data.byteLength !== to - from) throw new Error("truncated");
      for (const c of chunks) checkPageCrcs(data.subarray(c.from - from, c.to - from), path, `${where}, column ${c.name}`);
      await hashTo(from);
      await hashTo(to, { start: from, data });
      // The row group's bytes, read once: hyparquet's reads inside them are served from memory.
      const cached: AsyncBuffer = {
        byteLength: file.byteLength,
        slice: (s, e = file.byteLength) => (s >= from && e <= to ? data.slice(s - from, e - from).buffer : file.slice(s, e)),
      };
      // utf8: false keeps un-annotated binary columns as their bytes; text columns go through `parsers`.
      rows = await parquetReadObjects({ file: cached, metadata: meta, rowStart: start, rowEnd: end, compressors, utf8: false, parsers });
    } catch (err) {
      throw damaged(path, where, err);
    }
    for (let i = 0; i < rows.length; i++) {
      const where = `${path} row ${start + i}`;
      const problem = rowProblem(rows[i]);
      yield problem
        ? { row: start + i, where, error: problem, text: rowText(rows[i]) }
        : { row: start + i, where, value: rows[i] as RowValue };
    }
    start = end;
  }
  await hashTo(file.byteLength);
}

/** A Parquet row as JSON text for unscored.jsonl (undefined when it is too deep to write). */
function rowText(row: unknown): string | undefined {
  try {
    return JSON.stringify(row, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v instanceof InvalidUtf8 ? v.text : v));
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/** Sees every byte of the file a pass reads, in order. */
export type OnBytes = (chunk: Uint8Array) => void;

/** All rows of a data file, in order; `onBytes` sees every byte of the file, once, in order. */
export async function* readRows(path: string, onBytes?: OnBytes): AsyncGenerator<RawRow> {
  const kind = dataKind(path);
  const source = kind === "jsonl" ? readJsonl(path, onBytes) : kind === "json" ? readJson(path, onBytes) : readParquet(path, onBytes);
  // Surface "file not found" (or a folder, a symlink loop...) as a one-line error naming the file, wherever
  // the reader first touches it.
  const first = await readingFile(path, async () => source.next());
  if (first.done) return;
  yield first.value;
  yield* source;
}
