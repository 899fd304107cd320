// `dlc-prune model tiny`: a Llama-architecture model with seeded random weights and a BPE tokenizer trained
// on a seeded corpus, for tests, the demo and benchmarks. Its predictions are meaningless.
import { tinySchema, type TinyConfig } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { createRng, normal } from "../util/rng.js";
import { trainBpe } from "./bpe-trainer.js";
import { headDim, llamaConfigProblem, type LlamaConfig } from "./llama-config.js";
import type { LlamaLayerWeights, LlamaWeights, WeightType } from "./llama-graph.js";
import { writeModelFolder } from "./folder.js";
import { tinyCorpus } from "./tiny-corpus.js";
import { SPACE, bytePiece, type SentencePieceVocab } from "./tokenizer-json.js";

/** The options of config key model.tiny, and how the folder is stored. */
export type TinyOptions = TinyConfig & { externalData?: boolean; dtype?: WeightType };

export const TINY_DEFAULTS: TinyConfig = tinySchema.parse({});

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"];

export function defaultIntermediate(hidden: number): number {
  return 32 * Math.ceil(Math.floor((2 * 4 * hidden) / 3) / 32);
}

/** Vocab: <unk> <s> </s>, the 256 byte-fallback pieces, corpus characters, learned merges, chat tokens. */
export function tinyVocab(size: number, seed: number): SentencePieceVocab {
  const fixed = 3 + 256 + CHAT_TOKENS.length;
  const { alphabet, merged } = trainBpe(tinyCorpus(seed), Math.max(0, size - fixed));
  const learned = [...alphabet, ...merged].slice(0, size - fixed);
  if (learned.length < alphabet.length)
    throw new UserError(`--vocab ${size} is too small: the tokenizer needs at least ${fixed + alphabet.length} tokens`);
  const pieces = ["<unk>", "<s>", "</s>"];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    pieces.push(bytePiece(b));
    scores.push(0);
  }
  // Merged pieces score by learning order; single characters below them (they are never merge results).
  const charScores = alphabet.map((_, i) => -(merged.length + i));
  learned.forEach((p, i) => {
    pieces.push(p);
    scores.push(i < alphabet.length ? charScores[i]! : -(i - alphabet.length));
  });
  // A corpus too small for the requested size leaves reserved pieces that no merge can produce.
  for (let r = 0; pieces.length < size - CHAT_TOKENS.length; r++) {
    pieces.push(`<reserved_${r}>`);
    scores.push(-1e9);
  }
  const special = [0, 1, 2];
  for (const t of CHAT_TOKENS) {
    special.push(pieces.length);
    pieces.push(t);
    scores.push(0);
  }
  if (!pieces.includes(SPACE)) throw new Error("tiny corpus has no space character");
  return { pieces, scores, special, unk: 0, bos: 1, eos: 2 };
}

export function tinyConfig(o: TinyConfig): LlamaConfig {
  const cfg: LlamaConfig = {
    hiddenSize: o.hidden,
    intermediateSize: o.intermediate ?? defaultIntermediate(o.hidden),
    numLayers: o.layers,
    numHeads: o.heads,
    numKvHeads: o.kv_heads,
    vocabSize: o.vocab,
    maxPositions: o.max_positions,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieEmbeddings: o.tie_embeddings,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const problem = llamaConfigProblem(cfg);
  if (problem) throw new UserError(`model tiny: ${problem}`);
  return cfg;
}

/** Seeded weights: N(0, 0.02) matrices as in Llama's initialisation, norms around 1. */
export function tinyWeights(cfg: LlamaConfig, seed: number): LlamaWeights {
  const rng = createRng(seed ^ 0x5eed);
  const matrix = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = 0.02 * normal(rng);
    return a;
  };
  const norm = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = 1 + 0.1 * normal(rng);
    return a;
  };
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const D = headDim(cfg);
  const kv = cfg.numKvHeads * D;
  const embed = matrix(cfg.vocabSize * H);
  const layers: LlamaLayerWeights[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    layers.push({
      inputNorm: norm(H),
      q: matrix(H * H),
      k: matrix(H * kv),
      v: matrix(H * kv),
      o: matrix(H * H),
      postNorm: norm(H),
      gate: matrix(H * I),
      up: matrix(H * I),
      down: matrix(I * H),
    });
  }
  return { embed, layers, norm: norm(H), lmHead: cfg.tieEmbeddings ? undefined : matrix(H * cfg.vocabSize) };
}

export async function writeTinyModel(dir: string, o: TinyOptions): Promise<LlamaConfig> {
  const config = tinyConfig(o);
  await writeModelFolder(dir, {
    config,
    weights: tinyWeights(config, o.seed),
    vocab: tinyVocab(o.vocab, o.seed),
    chatTemplate: CHATML_TEMPLATE,
    externalData: o.externalData,
    dtype: o.dtype,
    source: `dlc-prune model tiny ${JSON.stringify(o)} (random weights)`,
  });
  return config;
}
