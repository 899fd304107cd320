// Hugging Face tokenizer.json / tokenizer_config.json for SentencePiece-style BPE vocabularies
// (pieces with scores, "▁" for spaces, byte fallback <0x00>..<0xFF>), written so that transformers.js
// reproduces llama2.c's encoder: highest-scoring adjacent merge first, a dummy leading space.

export const SPACE = "\u2581"; // "▁", SentencePiece's whitespace marker

export interface SentencePieceVocab {
  /** Pieces in id order, spaces written as "▁". */
  pieces: string[];
  scores: number[];
  /** Ids of the special tokens, matched whole in text and skipped when decoding with skip_special_tokens. */
  special: number[];
  unk: number;
  bos: number;
  eos: number;
}

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Merges derived from the piece scores as Hugging Face's SentencePiece converter does: every split of a
 * piece into two pieces is a merge, ranked by the merged piece's score (higher first; stable for ties).
 */
export function mergesFromScores(vocab: SentencePieceVocab): [string, string][] {
  const ids = new Map<string, number>();
  vocab.pieces.forEach((p, i) => {
    if (!ids.has(p)) ids.set(p, i);
  });
  const special = new Set(vocab.special);
  const merges: { left: string; right: string; score: number }[] = [];
  vocab.pieces.forEach((piece, id) => {
    if (special.has(id)) return;
    const chars = Array.from(piece); // split on code points, never inside a surrogate pair
    const local: { left: string; right: string; score: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join("");
      const right = chars.slice(i).join("");
      if (ids.has(left) && ids.has(right)) local.push({ left, right, score: vocab.scores[id]! });
    }
    local.sort((a, b) => ids.get(a.left)! - ids.get(b.left)! || ids.get(a.right)! - ids.get(b.right)!);
    merges.push(...local);
  });
  merges.sort((a, b) => b.score - a.score); // Array.prototype.sort is stable
  return merges.map((m) => [m.left, m.right]);
}

export function buildTokenizerFiles(vocab: SentencePieceVocab, opts: { chatTemplate: string; modelMaxLength: number }): TokenizerFiles {
  const addedTokens = addedTokensOf(vocab);
  const bos = vocab.pieces[vocab.bos]!;
  const eos = vocab.pieces[vocab.eos]!;
  const unk = vocab.pieces[vocab.unk]!;
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: NORMALIZER,
    pre_tokenizer: null,
    post_processor: bosProcessor(bos, vocab.bos),
    decoder: DECODER,
    model: bpeModel(vocab, unk),
  };
  const tokenizerConfig = {
    tokenizer_class: "LlamaTokenizer",
    add_bos_token: true,
    add_eos_token: false,
    bos_token: bos,
    eos_token: eos,
    unk_token: unk,
    pad_token: null,
    legacy: true,
    clean_up_tokenization_spaces: false,
    spaces_between_special_tokens: false,
    model_max_length: opts.modelMaxLength,
    chat_template: opts.chatTemplate,
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...rest }) => [String(id), rest])),
  };
  return { tokenizerJson, tokenizerConfig };
}

/** The special tokens, in id order, matched whole and never normalized. */
function addedTokensOf(vocab: SentencePieceVocab) {
  return [...new Set(vocab.special)]
    .sort((a, b) => a - b)
    .map((id) => ({
      id,
      content: vocab.pieces[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }));
}

// Prepend + Replace rather than a Metaspace pre-tokenizer: Metaspace skips the dummy prefix when the
// text starts with a space, which llama2.c does not.
const NORMALIZER = {
  type: "Sequence",
  normalizers: [
    { type: "Prepend", prepend: SPACE },
    { type: "Replace", pattern: { String: " " }, content: SPACE },
  ],
};

const DECODER = {
  type: "Sequence",
  decoders: [
    { type: "Replace", pattern: { String: SPACE }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
    { type: "Strip", content: " ", start: 1, stop: 0 },
  ],
};

/** Puts BOS (piece `bos`, id `bosId`) before each sequence, as add_bos_token does. */
function bosProcessor(bos: string, bosId: number) {
  return {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: "B", type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

/** The BPE model: each piece's first id, the merges from the scores, byte fallback for the rest. */
function bpeModel(vocab: SentencePieceVocab, unk: string) {
  const vocabMap: Record<string, number> = {};
  vocab.pieces.forEach((p, i) => {
    if (!(p in vocabMap)) vocabMap[p] = i;
  });
  return {
    type: "BPE",
    dropout: null,
    unk_token: unk,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: true,
    ignore_merges: false,
    vocab: vocabMap,
    merges: mergesFromScores(vocab),
  };
}

/** The byte-fallback piece of byte b: "<0x41>". */
export function bytePiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}
