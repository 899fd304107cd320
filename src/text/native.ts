// The `tokenizers` npm package (Hugging Face's Rust tokenizer, an optional dependency) on the same
// tokenizer.json: several times faster than transformers.js, and it gives each token's place in the text, so a
// row's parts can be told apart from one encoding. transformers.js stays the reference (see encode.ts).
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** A text's ids, and where its tokens meet. */
export interface NativeEncoding {
  ids: number[];
  /**
   * The number of tokens before code point `c` of the text (special tokens added before it included) when a
   * token starts there, so that none straddles it; null when one does.
   */
  tokensBefore(c: number): number | null;
}

export interface NativeTokenizer {
  encode(text: string, addSpecialTokens: boolean): Promise<NativeEncoding>;
  /**
   * True when the tokenizer's pipeline makes a prefix's ids the full text's ids before a token boundary at the
   * prefix's end (see `splitsAtTokenBoundaries`): the parts' lengths then come from one encoding.
   */
  oneEncoding: boolean;
}

// The package's surface used here, declared so that the build does not need the optional package.
interface NativeEncodingObject {
  getIds(): number[];
  charToToken(pos: number): number | null;
  tokenToChars(token: number): [number, number] | null | undefined;
}
interface NativeModule {
  Tokenizer?: NativeTokenizerClass;
  default?: { Tokenizer?: NativeTokenizerClass };
}
interface NativeTokenizerClass {
  fromString(json: string): {
    encode(text: string, pair: null, options: { addSpecialTokens: boolean }): Promise<NativeEncodingObject>;
    disableTruncation(): void;
    disablePadding(): void;
  };
}

type Json = Record<string, unknown> | null | undefined;

const NATIVE_PACKAGE = "tokenizers";

/**
 * Whether a boundary of the full text's tokens at a prefix's end means that the prefix alone encodes to the
 * tokens before it. True for SentencePiece-style BPE (Llama, Mistral): added tokens split off first and taken
 * literally; per-character normalizers (a prepended "▁", one character replaced by one); no pre-tokenizer or
 * Metaspace (splits at single characters); plain BPE, where no merge across the boundary means the merges
 * on its left are the prefix's own; special tokens only before the text. Regex pre-tokenizers (GPT-2's
 * `\s+(?!\S)` looks ahead) and anything else are not: their rows are encoded per prefix, as transformers.js is.
 */
export function splitsAtTokenBoundaries(json: Record<string, unknown>): boolean {
  const normalizers = (n: Json): Json[] => (n?.type === "Sequence" ? (n.normalizers as Json[]) : [n]);
  const oneChar = (n: Json) => {
    const pattern = n?.pattern as Json;
    return typeof pattern?.String === "string" && [...pattern.String].length === 1 && [...String(n?.content)].length === 1;
  };
  const normalizerOk = normalizers(json.normalizer as Json).every(
    (n) => !n || n.type === "Prepend" || (n.type === "Replace" && oneChar(n)),
  );
  const pre = json.pre_tokenizer as Json;
  const preOk = !pre || pre.type === "Metaspace";
  const model = json.model as Json;
  const modelOk =
    model?.type === "BPE" && model.dropout == null && !model.ignore_merges && !model.continuing_subword_prefix && !model.end_of_word_suffix;
  const post = json.post_processor as Json;
  const single = (post?.single ?? []) as Json[];
  const postOk = !post || (post.type === "TemplateProcessing" && single.findIndex((p) => p?.Sequence) === single.length - 1);
  const added = (json.added_tokens ?? []) as Json[];
  const addedOk = added.every((t) => !t?.normalized && !t?.lstrip && !t?.rstrip && !t?.single_word);
  return normalizerOk && preOk && modelOk && postOk && addedOk;
}

/** Code points, the unit of the native tokenizer's offsets. */
export const codePoints = (s: string) => s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);

/**
 * Read from the first token covering code point `c` (a few calls, not every token's offsets, which cost
 * more than the encoding). With the pipelines `oneEncoding` admits, tokens follow the text in order, so the
 * tokens before that one end by `c` when it starts at `c`.
 */
function tokensBefore(e: NativeEncodingObject, tokens: number, length: number, c: number): number | null {
  if (c >= length) return c === length ? tokens : null;
  const t = e.charToToken(c);
  return t !== null && e.tokenToChars(t)?.[0] === c ? t : null;
}

/** The native tokenizer of `dir`'s tokenizer.json, or null when the package or its binary cannot be loaded. */
export async function loadNativeTokenizer(dir: string): Promise<NativeTokenizer | null> {
  let Tokenizer: NativeTokenizerClass | undefined;
  let text: string;
  try {
    const mod = (await import(NATIVE_PACKAGE)) as NativeModule;
    Tokenizer = mod.Tokenizer ?? mod.default?.Tokenizer;
    text = await readFile(join(dir, "tokenizer.json"), "utf8");
  } catch {
    return null;
  }
  if (!Tokenizer) return null;
  try {
    const tok = Tokenizer.fromString(text);
    // transformers.js ignores tokenizer.json's truncation and padding: so must this.
    tok.disableTruncation();
    tok.disablePadding();
    return {
      encode: async (t, addSpecialTokens) => {
        const e = await tok.encode(t, null, { addSpecialTokens });
        const ids = e.getIds();
        let length: number | undefined;
        return { ids, tokensBefore: (c) => tokensBefore(e, ids.length, (length ??= codePoints(t)), c) };
      },
      oneEncoding: splitsAtTokenBoundaries(JSON.parse(text) as Record<string, unknown>),
    };
  } catch {
    // A tokenizer.json the Rust library does not read: transformers.js alone.
    return null;
  }
}
