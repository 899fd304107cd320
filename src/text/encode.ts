// Rows -> token ids with the response positions marked. Every row ends up encoded or unscored with a reason.
import { createHash } from "node:crypto";
import { UserError } from "../util/errors.js";
import { fieldText, RowError, toSample, type ResolvedFormat } from "../data/formats.js";
import type { DataSource } from "../data/source.js";
import type { RawRow } from "../data/read.js";
import type { Config } from "../config/schema.js";
import { renderParts, resolveTemplate, TemplateError, type Part, type Template } from "./templates.js";
import type { TextTokenizer } from "./tokenizer.js";
import { codePoints, type NativeEncoding, type NativeTokenizer } from "./native.js";
import { DuplicateFinder, type Duplicate } from "./duplicates.js";

/** Token ids to run through the model; `spans` are [start, end) ranges of the tokens scored, all at positions >= 1. */
export interface Sequence {
  ids: Int32Array;
  spans: [number, number][];
  /** Tokens scored (after truncation). */
  tokens: number;
}

/** A tokenized row: its prompt and response, and (for IFD) its response alone, without the prompt. */
export interface Encoded extends Sequence {
  row: number;
  status: "ok" | "truncated";
  alone?: Sequence;
}

export interface Unscored {
  row: number;
  status: string;
}

export interface EncodedDataset {
  rows: number;
  format: ResolvedFormat;
  template: Template;
  /** The rows `owns` chose (all by default), in row order: tokenized, or unscored with the reason. */
  encoded: Encoded[];
  unscored: Unscored[];
  /** sha256 of every row as rendered for the tokenizer (each part's text and whether it is scored) or its reason to be unscored. */
  renderedSha256: string;
  /** The configured id field's value per row, when there is one. */
  ids: (string | null)[] | null;
  /** Rows whose response repeats an earlier row's (src/text/duplicates), by row: scored or not. */
  duplicates: Map<number, Duplicate>;
}

const startsWith = (a: number[], prefix: number[]) => prefix.length <= a.length && prefix.every((v, i) => a[i] === v);

type Tokenized = { ids: number[]; spans: [number, number][] };

/** The scored parts' [start, end) from each part's token bounds (bounds[k] to bounds[k + 1]). */
function spansFrom(parts: Part[], bounds: number[]): [number, number][] {
  const spans: [number, number][] = [];
  parts.forEach((p, k) => {
    const [start, end] = [bounds[k]!, bounds[k + 1]!];
    if (p.scored && end > start) spans.push([start, end]);
  });
  return spans;
}

/** tokenizeParts' rule with any tokenizer's `encode`: joint when each prefix's ids begin the next's, else separate. */
async function jointOrSeparate(
  parts: Part[],
  encode: (text: string, addSpecialTokens: boolean) => number[] | Promise<number[]>,
  addSpecialTokens: boolean,
): Promise<Tokenized> {
  let text = "";
  let previous: number[] = [];
  const bounds = [0];
  for (const p of parts) {
    text += p.text;
    const ids = await encode(text, addSpecialTokens);
    if (!startsWith(ids, previous)) return separately(parts, encode, addSpecialTokens);
    bounds.push(ids.length);
    previous = ids;
  }
  return { ids: previous, spans: spansFrom(parts, bounds) };
}

async function separately(
  parts: Part[],
  encode: (text: string, addSpecialTokens: boolean) => number[] | Promise<number[]>,
  addSpecialTokens: boolean,
): Promise<Tokenized> {
  const ids: number[] = [];
  const bounds = [0];
  for (const [k, p] of parts.entries()) {
    ids.push(...(await encode(p.text, addSpecialTokens && k === 0)));
    bounds.push(ids.length);
  }
  return { ids, spans: spansFrom(parts, bounds) };
}

/**
 * Tokenizes the parts together and marks each part's tokens. Joint tokenization can merge across a part
 * boundary (e.g. "Response:" + "The"); then the parts are tokenized separately instead, so the loss mask is
 * never misaligned. This is the reference (transformers.js, each prefix encoded); `tokenizeRow` gives the same.
 */
export function tokenizeParts(parts: Part[], tok: TextTokenizer, addSpecialTokens: boolean): Promise<Tokenized> {
  return jointOrSeparate(parts, (text, special) => tok.encode(text, special), addSpecialTokens);
}

/** Each part's end in tokens, read off one encoding of the whole text; null when a token straddles one. */
function boundsOf(parts: Part[], e: NativeEncoding): number[] | null {
  const bounds = [0];
  let c = 0;
  for (const p of parts) {
    c += codePoints(p.text);
    const b = e.tokensBefore(c);
    if (b === null) return null;
    bounds.push(b);
  }
  return bounds;
}

/**
 * A row's parts with the native tokenizer: one encoding where its pipeline lets the parts' ends be read off
 * the tokens' offsets (native.ts), else tokenizeParts' rule with its encodings.
 */
async function nativeParts(parts: Part[], native: NativeTokenizer, addSpecialTokens: boolean): Promise<Tokenized> {
  if (native.oneEncoding) {
    const e = await native.encode(parts.map((p) => p.text).join(""), addSpecialTokens);
    const bounds = boundsOf(parts, e);
    if (bounds) return { ids: e.ids, spans: spansFrom(parts, bounds) };
  }
  return jointOrSeparate(parts, async (text, special) => (await native.encode(text, special)).ids, addSpecialTokens);
}

/** The native tokenizer gave other ids or spans than transformers.js on a checked row. */
class NativeMismatch extends Error {
  constructor(readonly row: number) {
    super(`row ${row}`);
  }
}

// Rows checked against transformers.js when the native tokenizer encodes: the first ones and one in CHECK_EVERY.
const CHECK_FIRST = 32;
const CHECK_EVERY = 256;

const sameTokens = (a: Tokenized, b: Tokenized) =>
  a.ids.length === b.ids.length && startsWith(a.ids, b.ids) && JSON.stringify(a.spans) === JSON.stringify(b.spans);

const checkedRow = (row: number) => row < CHECK_FIRST || row % CHECK_EVERY === 0;

/** Encodes a row's parts as tokenizeParts does; `checks`: it compares the checked rows with transformers.js. */
interface RowTokenizer {
  tokenize(parts: Part[], addSpecialTokens: boolean, row: number): Promise<Tokenized>;
  checks: boolean;
}

/**
 * transformers.js alone; or the native tokenizer, checked against transformers.js on a sample of rows (a
 * mismatch throws NativeMismatch) and not given text with lone surrogates, which it cannot take as UTF-8 (the
 * reader refuses them in fields; this keeps a chat template from making one).
 */
function rowTokenizer(tok: TextTokenizer): RowTokenizer {
  const native = tok.native;
  if (!native) return { tokenize: (parts, special) => tokenizeParts(parts, tok, special), checks: false };
  const tokenize = async (parts: Part[], special: boolean, row: number) => {
    if (!parts.every((p) => p.text.isWellFormed())) return tokenizeParts(parts, tok, special);
    const got = await nativeParts(parts, native, special);
    if (checkedRow(row) && !sameTokens(got, await tokenizeParts(parts, tok, special))) throw new NativeMismatch(row);
    return got;
  };
  return { tokenize, checks: true };
}

/**
 * Cuts a sequence to `maxTokens`; position 0 is never scored (nothing predicts it). With `drop`, a row that
 * would be cut is unscored instead ("too-long").
 */
export function truncate(
  ids: number[],
  spans: [number, number][],
  maxTokens: number,
  drop = false,
): (Sequence & { status: Encoded["status"] }) | string {
  const n = Math.min(ids.length, maxTokens);
  const kept: [number, number][] = [];
  let tokens = 0;
  for (const [s, e] of spans) {
    const start = Math.max(s, 1);
    const end = Math.min(e, n);
    if (end > start) {
      kept.push([start, end]);
      tokens += end - start;
    }
  }
  if (tokens === 0) return spans.length === 0 ? "empty-response" : "prompt-too-long";
  if (drop && n < ids.length) return "too-long";
  return { ids: Int32Array.from(ids.slice(0, n)), spans: kept, tokens, status: n < ids.length ? "truncated" : "ok" };
}

export interface EncodeOptions {
  truncated?: Config["score"]["truncated"];
  ifd?: boolean;
  /**
   * The rows to tokenize (a shard's, src/score/plan ownsRow); the others are read and rendered only (their
   * duplicate flags, ids and the rendered hash cover every row). Default: all.
   */
  owns?: (row: number) => boolean;
  /** Called as each row is read, before it is tokenized (progress from the first row). */
  onRow?: (row: number) => void;
  log?: (line: string) => void;
}

/**
 * Every row of `source` (that `opts.owns`) tokenized with `template` (config key `template`), or unscored with
 * its reason. The native tokenizer encodes when it loaded; should it differ from transformers.js on a checked
 * row, every row is encoded again with transformers.js, so the tokens are always transformers.js's. The checked
 * rows are checked whoever owns them, so that every shard falls back alike, as one process over all rows does.
 */
export async function encodeDataset(
  source: DataSource,
  templateChoice: Config["template"],
  tok: TextTokenizer,
  maxTokens: number,
  opts: EncodeOptions = {},
): Promise<EncodedDataset> {
  try {
    return await encodeRows(source, templateChoice, tok, rowTokenizer(tok), maxTokens, opts);
  } catch (err) {
    if (!(err instanceof NativeMismatch)) throw err;
    opts.log?.(
      `the tokenizers package's tokens differ from transformers.js's on row ${err.row}: tokenizing every row with transformers.js instead`,
    );
    return encodeRows(source, templateChoice, tok, rowTokenizer({ ...tok, native: undefined }), maxTokens, opts);
  }
}

/** A read row's parts, or the reason it cannot be scored; a RowError when it is a bad row. */
function renderRow(raw: RawRow, format: ResolvedFormat | undefined, template: Template | undefined, tok: TextTokenizer): Part[] | string {
  if (!format || raw.error) throw new RowError(raw.where, raw.error ?? "not a row");
  try {
    return renderParts(toSample(raw, format), template!, tok.chat);
  } catch (err) {
    if (err instanceof TemplateError) throw new RowError(raw.where, err.message);
    throw err;
  }
}

async function encodeRows(
  source: DataSource,
  templateChoice: Config["template"],
  tok: TextTokenizer,
  tokenizeRow: RowTokenizer,
  maxTokens: number,
  opts: EncodeOptions,
): Promise<EncodedDataset> {
  const data = source.config;
  let format: ResolvedFormat | undefined;
  let template: Template | undefined;
  const encoded: Encoded[] = [];
  const unscored: Unscored[] = [];
  const ids: (string | null)[] | null = data.fields.id ? [] : null;
  const duplicates = new DuplicateFinder();
  const rendered = createHash("sha256");
  let rows = 0;
  // Rows in the order read, each encoded or unscored: a few encode at once (the native tokenizer works on
  // other threads), their outcomes kept in order.
  const pending: Promise<Encoded | Unscored | null>[] = [];
  const settle = (o: Encoded | Unscored | null) => o && ("ids" in o ? encoded.push(o) : unscored.push(o));
  const queue = async (outcome: Promise<Encoded | Unscored | null>) => {
    outcome.catch(() => {}); // awaited below; not unhandled when an error ends the loop first
    pending.push(outcome);
    if (pending.length > IN_FLIGHT) settle(await pending.shift()!);
  };
  for await (const raw of source.rows()) {
    rows++;
    ids?.push(fieldText(raw.value, data.fields.id));
    opts.onRow?.(raw.row);
    let parts: Part[] | string;
    try {
      // The format comes from the first row that parses (or from the config).
      if (!format && raw.value) {
        format = source.formatOf(raw.value);
        template = resolveTemplate(templateChoice, format.format);
      }
      parts = renderRow(raw, format, template, tok);
    } catch (err) {
      if (!(err instanceof RowError)) throw err;
      if (data.on_error === "fail") throw new UserError(`${err.message} (data.on_error: skip keeps such rows unscored)`);
      parts = `bad-row: ${err.reason}`;
    }
    rendered.update(`${JSON.stringify([raw.row, parts])}\n`);
    if (typeof parts !== "string") duplicates.add(raw.row, parts);
    const outcome = outcomeOf(parts, raw.row, template !== "chat", tokenizeRow, maxTokens, opts);
    if (outcome) await queue(outcome);
  }
  for (const outcome of pending) settle(await outcome);
  if (!format) throw new UserError(`${data.path}: no row could be read${rows ? ` (${rows} malformed)` : ""}`);
  const renderedSha256 = rendered.digest("hex");
  return { rows, format, template: template!, encoded, unscored, renderedSha256, ids, duplicates: duplicates.found };
}

/**
 * A rendered row's encoding, or its reason to be unscored, when this process owns it. Another shard's row is
 * encoded only where the native tokenizer is checked, so that every shard falls back alike (its outcome null);
 * else undefined: nothing to do.
 */
function outcomeOf(
  parts: Part[] | string,
  row: number,
  addSpecialTokens: boolean,
  tokenizeRow: RowTokenizer,
  maxTokens: number,
  opts: EncodeOptions,
): Promise<Encoded | Unscored | null> | undefined {
  if (!opts.owns || opts.owns(row))
    return typeof parts === "string"
      ? Promise.resolve({ row, status: parts })
      : encodeRow(parts, addSpecialTokens, row, tokenizeRow, maxTokens, opts);
  if (typeof parts !== "string" && tokenizeRow.checks && checkedRow(row))
    return encodeRow(parts, addSpecialTokens, row, tokenizeRow, maxTokens, opts).then(() => null);
  return undefined;
}

// Rows encoding at once: enough to keep the native tokenizer's threads busy while the next rows are read.
const IN_FLIGHT = 16;

/** A rendered row's tokens, truncated, and (IFD) its response alone; or its reason to be unscored. */
async function encodeRow(
  parts: Part[],
  addSpecialTokens: boolean,
  row: number,
  tokenizeRow: RowTokenizer,
  maxTokens: number,
  opts: EncodeOptions,
): Promise<Encoded | Unscored> {
  const { ids, spans } = await tokenizeRow.tokenize(parts, addSpecialTokens, row);
  const result = truncate(ids, spans, maxTokens, opts.truncated === "drop");
  if (typeof result === "string") return { row, status: result };
  return { row, ...result, ...(opts.ifd ? { alone: await responseAlone(parts, tokenizeRow, row, maxTokens) } : {}) };
}

/**
 * The response without its prompt, for IFD's loss(response alone): the scored parts' text, tokenized as a
 * document of its own (with the tokenizer's special tokens, e.g. BOS, before it); undefined when no token of
 * it can be predicted within `maxTokens`.
 */
async function responseAlone(parts: Part[], tokenizeRow: RowTokenizer, row: number, maxTokens: number): Promise<Sequence | undefined> {
  const response = parts
    .filter((p) => p.scored)
    .map((p) => p.text)
    .join("");
  const { ids, spans } = await tokenizeRow.tokenize(
    [
      { text: "", scored: false },
      { text: response, scored: true },
    ],
    true,
    row,
  );
  const result = truncate(ids, spans, maxTokens);
  return typeof result === "string" ? undefined : { ids: result.ids, spans: result.spans, tokens: result.tokens };
}

/**
 * sha256 of what this process's model sees: its encoded rows' ids and response spans (and alone), and its
 * unscored rows. The run record hashes the rendered rows (the same in every shard); resuming saved progress
 * also needs the same tokens (src/score/checkpoint: another transformers.js or tokenizers build could differ).
 */
export function encodedSha256(data: EncodedDataset): string {
  const h = createHash("sha256");
  const sequence = (row: number, q: Sequence) => {
    h.update(new Uint8Array(Int32Array.from([row, q.ids.length, q.spans.length, ...q.spans.flat()]).buffer));
    h.update(new Uint8Array(q.ids.buffer, q.ids.byteOffset, q.ids.byteLength));
  };
  for (const e of data.encoded) {
    sequence(e.row, e);
    if (e.alone) sequence(-1 - e.row, e.alone);
  }
  for (const u of data.unscored) h.update(`${u.row}\u0000${u.status}\n`);
  return h.digest("hex");
}
