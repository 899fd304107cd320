// Independent plain port of llama2.c run.c's tokenizer (build_tokenizer / encode / decode).
// Used only by tests; favours obvious correctness over speed.

export interface Llama2cTokenizer {
  vocab: Uint8Array[];
  scores: Float32Array | number[];
  maxTokenLength: number;
  /** Piece bytes (as a latin1 key) -> first id with that piece; rebuilt from vocab when absent. */
  lookup?: Map<string, number>;
}

const BOS = 1;
const EOS = 2;

/** One char per byte, so distinct byte strings map to distinct keys. */
function key(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

export function loadLlama2cTokenizer(buf: Uint8Array, vocabSize: number): Llama2cTokenizer {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  const need = (n: number, what: string): void => {
    if (off + n > buf.byteLength) throw new Error(`llama2c tokenizer reference: truncated at ${what} (offset ${off})`);
  };
  need(4, "max_token_length");
  const maxTokenLength = dv.getInt32(off, true);
  off += 4;
  const vocab: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    need(8, `token ${i} header`);
    scores[i] = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    off += 8;
    if (len < 0) throw new Error(`llama2c tokenizer reference: negative length for token ${i}`);
    need(len, `token ${i} bytes`);
    const piece = buf.slice(off, off + len);
    off += len;
    vocab.push(piece);
  }
  return { vocab, scores, maxTokenLength, lookup: buildLookup(vocab) };
}

function buildLookup(vocab: Uint8Array[]): Map<string, number> {
  const lookup = new Map<string, number>();
  // run.c bsearch()es a sorted copy, so for duplicated pieces it may return any of the
  // duplicates; we deterministically keep the first id.
  vocab.forEach((piece, i) => {
    const k = key(piece);
    if (!lookup.has(k)) lookup.set(k, i);
  });
  return lookup;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function encodeLlama2c(tok: Llama2cTokenizer, text: string, bos: boolean, eos: boolean): number[] {
  let bytes = new TextEncoder().encode(text);
  // run.c receives a C string: anything after an embedded NUL is invisible to it.
  const nul = bytes.indexOf(0);
  if (nul >= 0) bytes = bytes.slice(0, nul);

  const lookup = tok.lookup ?? buildLookup(tok.vocab);
  const lookupId = (b: Uint8Array): number => lookup.get(key(b)) ?? -1;
  const tokens: number[] = [];
  if (bos) tokens.push(BOS);
  if (bytes.length > 0) {
    // dummy prefix " " (sentencepiece add_dummy_prefix); run.c would push -1 unchecked, we throw
    const dummy = lookupId(new Uint8Array([0x20]));
    if (dummy === -1) throw new Error('llama2c tokenizer reference: vocab has no " " piece');
    tokens.push(dummy);
  }

  // Split into codepoints exactly as run.c does: a chunk ends when the next byte is not a
  // continuation byte or the chunk already holds 4 bytes.
  let chunk: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((b & 0xc0) !== 0x80) chunk = [];
    chunk.push(b);
    const next = i + 1 < bytes.length ? bytes[i + 1]! : 0;
    if ((next & 0xc0) === 0x80 && chunk.length < 4) continue;
    const id = lookupId(Uint8Array.from(chunk));
    if (id !== -1) tokens.push(id);
    else for (const cb of chunk) tokens.push(cb + 3); // byte fallback: <0x00> is id 3
    chunk = [];
  }

  // Greedy merges: best (highest score) adjacent pair; strict ">" keeps the leftmost on ties.
  // run.c starts best_score at (float)-1e10, so pieces scoring <= that never merge.
  const floor = Math.fround(-1e10);
  for (;;) {
    let bestScore = floor;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = lookupId(concat(tok.vocab[tokens[i]!]!, tok.vocab[tokens[i + 1]!]!));
      // scores are float32 in tokenizer.bin; fround keeps the comparison in float32 values
      if (id !== -1 && Math.fround(tok.scores[id]!) > bestScore) {
        bestScore = Math.fround(tok.scores[id]!);
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  if (eos) tokens.push(EOS);
  return tokens;
}

/**
 * run.c decode(): strip a leading space after BOS; map "<0xHH>" pieces to the raw byte.
 * (run.c uses sscanf("<0x%02hhX>"), which is laxer; real vocabularies only contain the exact form.)
 */
export function decodeLlama2c(tok: Llama2cTokenizer, prevToken: number, token: number): Uint8Array {
  let piece = tok.vocab[token];
  if (piece === undefined) throw new Error(`llama2c tokenizer reference: token ${token} out of range`);
  if (prevToken === BOS && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(key(piece));
  if (m) return new Uint8Array([parseInt(m[1]!, 16)]);
  return piece.slice();
}

/**
 * Decodes like run.c's generate loop: the first id only serves as `prev` (it is normally BOS,
 * which run.c never prints), then every following id is decoded against its predecessor.
 */
export function decodeSequenceLlama2c(tok: Llama2cTokenizer, ids: number[]): string {
  const parts: Uint8Array[] = [];
  for (let i = 1; i < ids.length; i++) parts.push(decodeLlama2c(tok, ids[i - 1]!, ids[i]!));
  const total = parts.reduce((s, p) => s + p.length, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return new TextDecoder("utf-8").decode(all);
}
