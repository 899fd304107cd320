// Rows -> token ids with the response positions marked. Every row ends up encoded or unscored with a reason.
import { createHash } from "node:crypto";
import { UserError } from "../util/errors.js";
import { fieldText, RowError, toSample, type ResolvedFormat } from "../data/formats.js";
import type { DataSource } from "../data/source.js";
import type { Config } from "../config/schema.js";
import { renderParts, resolveTemplate, TemplateError, type Part, type Template } from "./templates.js";
import type { TextTokenizer } from "./tokenizer.js";

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
  encoded: Encoded[];
  unscored: Unscored[];
  /** The configured id field's value per row, when there is one. */
  ids: (string | null)[] | null;
}

const startsWith = (a: number[], prefix: number[]) => prefix.length <= a.length && prefix.every((v, i) => a[i] === v);

/**
 * Tokenizes the parts together and marks each part's tokens. Joint tokenization can merge across a part
 * boundary (e.g. "Response:" + "The"); then the parts are tokenized separately instead, so the loss mask is
 * never misaligned.
 */
export function tokenizeParts(parts: Part[], tok: TextTokenizer, addSpecialTokens: boolean): { ids: number[]; spans: [number, number][] } {
  const spansFrom = (bounds: number[]) => {
    const spans: [number, number][] = [];
    parts.forEach((p, k) => {
      const [start, end] = [bounds[k]!, bounds[k + 1]!];
      if (p.scored && end > start) spans.push([start, end]);
    });
    return spans;
  };
  let text = "";
  let previous: number[] = [];
  const bounds = [0];
  let joint = true;
  for (const p of parts) {
    text += p.text;
    const ids = tok.encode(text, addSpecialTokens);
    if (!startsWith(ids, previous)) {
      joint = false;
      break;
    }
    bounds.push(ids.length);
    previous = ids;
  }
  if (joint) return { ids: previous, spans: spansFrom(bounds) };
  const ids: number[] = [];
  const separate = [0];
  parts.forEach((p, k) => {
    ids.push(...tok.encode(p.text, addSpecialTokens && k === 0));
    separate.push(ids.length);
  });
  return { ids, spans: spansFrom(separate) };
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

/** Every row of `source` tokenized with `template` (config key `template`), or unscored with its reason. */
export async function encodeDataset(
  source: DataSource,
  templateChoice: Config["template"],
  tok: TextTokenizer,
  maxTokens: number,
  opts: { truncated?: Config["score"]["truncated"]; ifd?: boolean; onRow?: (row: number) => void } = {},
): Promise<EncodedDataset> {
  const data = source.config;
  let format: ResolvedFormat | undefined;
  let template: Template | undefined;
  const encoded: Encoded[] = [];
  const unscored: Unscored[] = [];
  const ids: (string | null)[] | null = data.fields.id ? [] : null;
  let rows = 0;
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
      if (!format || raw.error) throw new RowError(raw.where, raw.error ?? "not a row");
      try {
        parts = renderParts(toSample(raw, format), template!, tok.chat);
      } catch (err) {
        if (err instanceof TemplateError) throw new RowError(raw.where, err.message);
        throw err;
      }
    } catch (err) {
      if (!(err instanceof RowError)) throw err;
      if (data.on_error === "fail") throw new UserError(`${err.message} (data.on_error: skip keeps such rows unscored)`);
      unscored.push({ row: raw.row, status: `bad-row: ${err.reason}` });
      continue;
    }
    if (typeof parts === "string") {
      unscored.push({ row: raw.row, status: parts });
      continue;
    }
    const { ids: tokenIds, spans } = tokenizeParts(parts, tok, template !== "chat");
    const result = truncate(tokenIds, spans, maxTokens, opts.truncated === "drop");
    if (typeof result === "string") unscored.push({ row: raw.row, status: result });
    else encoded.push({ row: raw.row, ...result, ...(opts.ifd ? { alone: responseAlone(parts, tok, maxTokens) } : {}) });
  }
  if (!format) throw new UserError(`${data.path}: no row could be read${rows ? ` (${rows} malformed)` : ""}`);
  return { rows, format, template: template!, encoded, unscored, ids };
}

/**
 * The response without its prompt, for IFD's loss(response alone): the scored parts' text, tokenized as a
 * document of its own (with the tokenizer's special tokens, e.g. BOS, before it); undefined when no token of
 * it can be predicted within `maxTokens`.
 */
function responseAlone(parts: Part[], tok: TextTokenizer, maxTokens: number): Sequence | undefined {
  const response = parts
    .filter((p) => p.scored)
    .map((p) => p.text)
    .join("");
  const { ids, spans } = tokenizeParts(
    [
      { text: "", scored: false },
      { text: response, scored: true },
    ],
    tok,
    true,
  );
  const result = truncate(ids, spans, maxTokens);
  return typeof result === "string" ? undefined : { ids: result.ids, spans: result.spans, tokens: result.tokens };
}

/** sha256 of what the model will see: every encoded row's ids and response spans (and alone), and the unscored rows. */
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
