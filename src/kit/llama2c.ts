// `dlc-prune model import-llama2c`: converts a llama2.c checkpoint (legacy v0 format) and its tokenizer.bin
// into the Hugging Face / Optimum folder layout.
import { readFile } from "node:fs/promises";
import { UserError, readingFile } from "../util/errors.js";
import { headDim, llamaConfigProblem, type LlamaConfig } from "./llama-config.js";
import { transposeRows, type LlamaLayerWeights, type LlamaWeights, type WeightType } from "./llama-graph.js";
import { writeModelFolder } from "./folder.js";
import { SPACE, type SentencePieceVocab } from "./tokenizer-json.js";

const HEADER_BYTES = 7 * 4;

export const LLAMA2_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}" +
  "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";

export interface Llama2cCheckpoint {
  config: LlamaConfig;
  weights: LlamaWeights;
}

/** Reads run.c's `Config` header and weights; every size is checked against the file length. */
export function parseLlama2cCheckpoint(buf: Uint8Array, file: string): Llama2cCheckpoint {
  const { config, rawVocab } = readHeader(buf, file);
  const floats = bodyFloats(buf, config, rawVocab, file);
  // Float32 views need 4-byte alignment: copy the body once.
  const body = new Float32Array(floats);
  new Uint8Array(body.buffer).set(buf.subarray(HEADER_BYTES));
  return { config, weights: graphWeights(body, config) };
}

/** The header's config, and its vocab size as written (for messages). */
function readHeader(buf: Uint8Array, file: string): { config: LlamaConfig; rawVocab: number } {
  if (buf.byteLength < HEADER_BYTES)
    throw new UserError(`${file}: truncated checkpoint (${buf.byteLength} bytes, header needs ${HEADER_BYTES})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = Array.from({ length: 7 }, (_, i) =>
    view.getInt32(4 * i, true),
  ) as number[];
  const config: LlamaConfig = {
    hiddenSize: dim!,
    intermediateSize: hiddenDim!,
    numLayers: nLayers!,
    numHeads: nHeads!,
    numKvHeads: nKvHeads!,
    vocabSize: Math.abs(rawVocab!),
    maxPositions: seqLen!,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieEmbeddings: rawVocab! > 0, // a negative vocab size means an unshared classifier follows
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const problem = llamaConfigProblem(config);
  if (problem) throw new UserError(`${file}: not a llama2.c checkpoint: header says ${problem}`);
  return { config, rawVocab: rawVocab! };
}

/** The sizes run.c's weights are laid out in; kv: the width of the k and v projections. */
function sizes(config: LlamaConfig) {
  const D = headDim(config);
  return { H: config.hiddenSize, I: config.intermediateSize, L: config.numLayers, V: config.vocabSize, D, kv: config.numKvHeads * D };
}

/** How many floats follow the header, refused unless the file holds exactly that many. */
function bodyFloats(buf: Uint8Array, config: LlamaConfig, rawVocab: number, file: string): number {
  const { H, I, L, V, D, kv } = sizes(config);
  const floats =
    V * H + L * (H + H * H + 2 * kv * H + H * H + H + 3 * H * I) + H + config.maxPositions * D + (config.tieEmbeddings ? 0 : V * H);
  const expected = HEADER_BYTES + 4 * floats;
  if (buf.byteLength !== expected)
    throw new UserError(
      `${file}: ${buf.byteLength < expected ? "truncated" : "wrong-size"} checkpoint: ${buf.byteLength} bytes, ` +
        `the header (dim ${H}, hidden ${I}, layers ${L}, heads ${config.numHeads}/${config.numKvHeads}, vocab ${rawVocab}, seq ${config.maxPositions}) needs ${expected}`,
    );
  return floats;
}

/** The body's tensors, in run.c's order, as the graph takes them: matrices [in, out], q/k rows in rotate_half order. */
function graphWeights(body: Float32Array, config: LlamaConfig): LlamaWeights {
  const { H, I, L, V, D, kv } = sizes(config);
  let at = 0;
  const take = (n: number) => body.subarray(at, (at += n));
  const embed = take(V * H);
  const rmsAtt = take(L * H);
  const wq = take(L * H * H);
  const wk = take(L * kv * H);
  const wv = take(L * kv * H);
  const wo = take(L * H * H);
  const rmsFfn = take(L * H);
  const w1 = take(L * I * H);
  const w2 = take(L * H * I);
  const w3 = take(L * I * H);
  const rmsFinal = take(H);
  take(config.maxPositions * D); // freq_cis_real, unused by run.c
  const wcls = config.tieEmbeddings ? undefined : take(V * H);

  const layer = (i: number): LlamaLayerWeights => ({
    inputNorm: rmsAtt.slice(i * H, (i + 1) * H),
    q: transposeRows(permuteRotaryRows(wq.subarray(i * H * H, (i + 1) * H * H), config.numHeads, D, H), H, H),
    k: transposeRows(permuteRotaryRows(wk.subarray(i * kv * H, (i + 1) * kv * H), config.numKvHeads, D, H), kv, H),
    v: transposeRows(wv.subarray(i * kv * H, (i + 1) * kv * H), kv, H),
    o: transposeRows(wo.subarray(i * H * H, (i + 1) * H * H), H, H),
    postNorm: rmsFfn.slice(i * H, (i + 1) * H),
    gate: transposeRows(w1.subarray(i * I * H, (i + 1) * I * H), I, H),
    up: transposeRows(w3.subarray(i * I * H, (i + 1) * I * H), I, H),
    down: transposeRows(w2.subarray(i * H * I, (i + 1) * H * I), H, I),
  });
  return {
    embed: embed.slice(),
    layers: Array.from({ length: L }, (_, i) => layer(i)),
    norm: rmsFinal.slice(),
    lmHead: wcls ? transposeRows(wcls, V, H) : undefined,
  };
}

/**
 * llama2.c rotates adjacent pairs (2i, 2i+1) of each head; the graph uses rotate_half (i, i + D/2).
 * Reordering each head's output rows from (i, pair) to (pair, i) makes the two identical, as Hugging Face's
 * conversion script does.
 */
function permuteRotaryRows(w: Float32Array, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++) {
        const from = (h * D + 2 * i + j) * cols;
        out.set(w.subarray(from, from + cols), (h * D + j * (D / 2) + i) * cols);
      }
  return out;
}

/**
 * Reads llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and the
 * bytes. llama2.c writes spaces for SentencePiece's "▁" and "\n<s>\n" / "\n</s>\n" for BOS / EOS.
 */
export function parseLlama2cTokenizer(buf: Uint8Array, vocabSize: number, file: string): SentencePieceVocab {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const pieces: string[] = [];
  const scores: number[] = [];
  let at = 4;
  if (buf.byteLength < 4) throw new UserError(`${file}: truncated tokenizer (${buf.byteLength} bytes)`);
  for (let id = 0; id < vocabSize; id++) {
    const short = () => new UserError(`${file}: tokenizer ends after ${id} tokens, the checkpoint's vocab size is ${vocabSize}`);
    if (at + 8 > buf.byteLength) throw short();
    scores.push(view.getFloat32(at, true));
    const len = view.getInt32(at + 4, true);
    at += 8;
    if (len < 0 || at + len > buf.byteLength) throw short();
    let piece: string;
    try {
      piece = decoder.decode(buf.subarray(at, at + len));
    } catch {
      throw new UserError(`${file}: token ${id} is not valid UTF-8`);
    }
    at += len;
    pieces.push(id === 1 ? "<s>" : id === 2 ? "</s>" : piece.replaceAll(" ", SPACE));
  }
  if (at !== buf.byteLength)
    throw new UserError(
      `${file}: tokenizer has more than ${vocabSize} tokens, the checkpoint's vocab size (${buf.byteLength - at} bytes left over)`,
    );
  return { pieces, scores, special: [0, 1, 2], unk: 0, bos: 1, eos: 2 };
}

export async function importLlama2c(opts: {
  checkpoint: string;
  tokenizer: string;
  out: string;
  externalData?: boolean;
  dtype?: WeightType;
}): Promise<LlamaConfig> {
  const ckptBytes = await readingFile(opts.checkpoint, () => readFile(opts.checkpoint));
  const tokBytes = await readingFile(opts.tokenizer, () => readFile(opts.tokenizer));
  const { config, weights } = parseLlama2cCheckpoint(ckptBytes, opts.checkpoint);
  const vocab = parseLlama2cTokenizer(tokBytes, config.vocabSize, opts.tokenizer);
  await writeModelFolder(opts.out, {
    config,
    weights,
    vocab,
    chatTemplate: LLAMA2_CHAT_TEMPLATE,
    externalData: opts.externalData,
    dtype: opts.dtype,
    source: `llama2.c checkpoint ${opts.checkpoint} with tokenizer ${opts.tokenizer}`,
  });
  return config;
}
