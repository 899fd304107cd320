// Independent reference reader/writer for karpathy/llama2.c legacy (v0) checkpoints,
// following run.c's read_checkpoint / memory_map_weights. Used only by tests.

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** Absolute vocabulary size (the header stores it negated when the classifier is unshared). */
  vocabSize: number;
  seqLen: number;
  /** true when wcls is the token embedding table (header vocab_size > 0). */
  sharedClassifier: boolean;
}

/**
 * Weights named after run.c's TransformerWeights. Matrices are (out, in) row-major,
 * exactly as run.c's matmul(xout, x, w, n, d) reads them: xout[i] = sum_j w[i*n + j] * x[j].
 */
export interface Llama2cWeights {
  token_embedding_table: Float32Array; // [vocab][dim]
  rms_att_weight: Float32Array; // [L][dim]
  wq: Float32Array; // [L][dim][dim]
  wk: Float32Array; // [L][kv_dim][dim]
  wv: Float32Array; // [L][kv_dim][dim]
  wo: Float32Array; // [L][dim][dim]
  rms_ffn_weight: Float32Array; // [L][dim]
  w1: Float32Array; // [L][hidden][dim]
  w2: Float32Array; // [L][dim][hidden]
  w3: Float32Array; // [L][hidden][dim]
  rms_final_weight: Float32Array; // [dim]
  /** [vocab][dim]; when sharedClassifier this is the same array as token_embedding_table. */
  wcls: Float32Array;
}

export interface Llama2cModel {
  config: Llama2cConfig;
  weights: Llama2cWeights;
}

const HEADER_INTS = 7;

export function headSize(c: Llama2cConfig): number {
  return c.dim / c.nHeads;
}

export function kvDim(c: Llama2cConfig): number {
  return (c.dim * c.nKvHeads) / c.nHeads;
}

function validateConfig(c: Llama2cConfig): void {
  const ints = [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.seqLen];
  if (!ints.every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`llama2c reference: invalid config ${JSON.stringify(c)}`);
  }
  if (c.dim % c.nHeads !== 0) throw new Error("llama2c reference: dim not divisible by n_heads");
  if (c.nHeads % c.nKvHeads !== 0) throw new Error("llama2c reference: n_heads not divisible by n_kv_heads");
  if (headSize(c) % 2 !== 0) throw new Error("llama2c reference: odd head_size (RoPE needs pairs)");
}

/** Sizes (in floats) of every array in run.c's file order; null marks the skipped freq_cis arrays. */
function layout(c: Llama2cConfig): Array<[keyof Llama2cWeights | null, number]> {
  const hs = headSize(c);
  const kv = kvDim(c);
  const L = c.nLayers;
  const out: Array<[keyof Llama2cWeights | null, number]> = [
    ["token_embedding_table", c.vocabSize * c.dim],
    ["rms_att_weight", L * c.dim],
    ["wq", L * c.dim * c.dim],
    ["wk", L * kv * c.dim],
    ["wv", L * kv * c.dim],
    ["wo", L * c.dim * c.dim],
    ["rms_ffn_weight", L * c.dim],
    ["w1", L * c.hiddenDim * c.dim],
    ["w2", L * c.dim * c.hiddenDim],
    ["w3", L * c.hiddenDim * c.dim],
    ["rms_final_weight", c.dim],
    [null, (c.seqLen * hs) / 2], // freq_cis_real (unused by run.c)
    [null, (c.seqLen * hs) / 2], // freq_cis_imag (unused by run.c)
  ];
  if (!c.sharedClassifier) out.push(["wcls", c.vocabSize * c.dim]);
  return out;
}

export function readLlama2cCheckpoint(buf: Uint8Array): Llama2cModel {
  if (buf.byteLength < HEADER_INTS * 4) throw new Error("llama2c reference: truncated header");
  // DataView avoids any alignment assumptions about buf's byteOffset.
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const h: number[] = [];
  for (let i = 0; i < HEADER_INTS; i++) h.push(dv.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = h as [number, number, number, number, number, number, number];
  // run.c: shared_weights = vocab_size > 0; vocab_size = abs(vocab_size)
  const config: Llama2cConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(rawVocab),
    seqLen,
    sharedClassifier: rawVocab > 0,
  };
  validateConfig(config);

  let off = HEADER_INTS * 4;
  const arrays: Partial<Record<keyof Llama2cWeights, Float32Array>> = {};
  for (const [name, n] of layout(config)) {
    const end = off + n * 4;
    if (end > buf.byteLength) {
      throw new Error(`llama2c reference: truncated checkpoint (need ${end} bytes for ${name ?? "freq_cis"}, have ${buf.byteLength})`);
    }
    if (name !== null) {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = dv.getFloat32(off + i * 4, true);
      arrays[name] = a;
    }
    off = end;
  }
  if (config.sharedClassifier) arrays.wcls = arrays.token_embedding_table!;
  return { config, weights: arrays as Llama2cWeights };
}

export function writeLlama2cCheckpoint(model: Llama2cModel): Uint8Array {
  const c = model.config;
  validateConfig(c);
  const lay = layout(c);
  const total = HEADER_INTS * 4 + lay.reduce((s, [, n]) => s + n * 4, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const header = [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen];
  header.forEach((v, i) => dv.setInt32(i * 4, v, true));
  let off = HEADER_INTS * 4;
  for (const [name, n] of lay) {
    if (name !== null) {
      const a = model.weights[name];
      if (a.length !== n) throw new Error(`llama2c reference: ${name} has ${a.length} floats, expected ${n}`);
      for (let i = 0; i < n; i++) dv.setFloat32(off + i * 4, a[i]!, true);
    } // freq_cis arrays stay zero
    off += n * 4;
  }
  return out;
}

/** mulberry32: tiny deterministic PRNG returning uniform [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random model: matrices uniform(-0.1, 0.1), RMSNorm weights 1 + uniform(-0.1, 0.1). */
export function randomLlama2cModel(config: Llama2cConfig, seed: number): Llama2cModel {
  validateConfig(config);
  const rnd = mulberry32(seed);
  const fill = (n: number, base: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = base + (rnd() * 2 - 1) * 0.1;
    return a;
  };
  const arrays: Partial<Record<keyof Llama2cWeights, Float32Array>> = {};
  for (const [name, n] of layout(config)) {
    if (name === null) continue;
    arrays[name] = fill(n, name.startsWith("rms_") ? 1 : 0);
  }
  if (config.sharedClassifier) arrays.wcls = arrays.token_embedding_table!;
  return { config: { ...config }, weights: arrays as Llama2cWeights };
}
