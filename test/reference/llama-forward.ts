// Independent float64 reference forward passes for llama-style decoders, written from
// llama2.c run.c and Hugging Face LlamaForCausalLM semantics. Used only by tests.
// Both compute full causal attention over one unpadded sequence (equivalent to a KV cache).

import { headSize, kvDim, type Llama2cModel } from "./llama2c-checkpoint.js";

export type FloatArr = Float32Array | Float64Array;

export interface HfLlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
}

/** PyTorch state-dict layout: every matrix is [out, in] row-major. */
export interface HfLlamaLayer {
  inputLayernorm: FloatArr;
  qProj: FloatArr;
  kProj: FloatArr;
  vProj: FloatArr;
  oProj: FloatArr;
  postAttentionLayernorm: FloatArr;
  gateProj: FloatArr;
  upProj: FloatArr;
  downProj: FloatArr;
}

export interface HfLlamaWeights {
  embedTokens: FloatArr;
  layers: HfLlamaLayer[];
  norm: FloatArr;
  lmHead: FloatArr;
}

// ---- small float64 helpers ----

/** y[i] = sum_j W[off + i*n + j] * x[j], W is (d, n) row-major starting at element `off`. */
function matvec(w: FloatArr, off: number, x: Float64Array, n: number, d: number): Float64Array {
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = 0;
    const row = off + i * n;
    for (let j = 0; j < n; j++) s += w[row + j]! * x[j]!;
    y[i] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: FloatArr, off: number, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = w[off + i]! * (x[i]! * inv);
  return y;
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

function row(table: FloatArr, idx: number, width: number): Float64Array {
  const y = new Float64Array(width);
  for (let i = 0; i < width; i++) y[i] = table[idx * width + i]!;
  return y;
}

function checkTokens(tokens: number[], vocab: number, positions: number[] | undefined): number[] {
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new Error(`reference forward: token ${t} out of range`);
  }
  const pos = positions ?? tokens.map((_, i) => i);
  if (pos.length !== tokens.length) throw new Error("reference forward: positions length mismatch");
  return pos;
}

/**
 * Causal grouped-query attention over all positions. q[t] has nHeads*hs entries,
 * k[t], v[t] have nKv*hs entries (already rotated). Query head h reads kv head floor(h / (nHeads/nKv)).
 */
function attention(q: Float64Array[], k: Float64Array[], v: Float64Array[], nHeads: number, nKv: number, hs: number): Float64Array[] {
  const kvMul = nHeads / nKv;
  const out: Float64Array[] = [];
  for (let t = 0; t < q.length; t++) {
    const o = new Float64Array(nHeads * hs);
    for (let h = 0; h < nHeads; h++) {
      const kh = Math.floor(h / kvMul);
      const scores = new Float64Array(t + 1);
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < hs; i++) dot += q[t]![h * hs + i]! * k[s]![kh * hs + i]!;
        scores[s] = dot / Math.sqrt(hs);
      }
      let max = -Infinity;
      for (const sc of scores) max = Math.max(max, sc);
      let sum = 0;
      for (let s = 0; s <= t; s++) {
        scores[s] = Math.exp(scores[s]! - max);
        sum += scores[s]!;
      }
      for (let s = 0; s <= t; s++) {
        const a = scores[s]! / sum;
        for (let i = 0; i < hs; i++) o[h * hs + i]! += a * v[s]![kh * hs + i]!;
      }
    }
    out.push(o);
  }
  return out;
}

// ---- (a) llama2.c run.c forward ----

/** llama2.c RoPE: rotate adjacent pairs (i, i+1); freq uses i % head_size. Applied in place. */
function ropeLlama2c(vec: Float64Array, len: number, hs: number, pos: number): void {
  for (let i = 0; i < len; i += 2) {
    const headDim = i % hs;
    const freq = 1 / Math.pow(10000, headDim / hs);
    const val = pos * freq;
    const c = Math.cos(val);
    const s = Math.sin(val);
    const v0 = vec[i]!;
    const v1 = vec[i + 1]!;
    vec[i] = v0 * c - v1 * s;
    vec[i + 1] = v0 * s + v1 * c;
  }
}

export function forwardLlama2c(model: Llama2cModel, tokens: number[], positions?: number[]): Float64Array[] {
  const c = model.config;
  const w = model.weights;
  const pos = checkTokens(tokens, c.vocabSize, positions);
  const dim = c.dim;
  const hid = c.hiddenDim;
  const hs = headSize(c);
  const kv = kvDim(c);
  const eps = 1e-5; // run.c hardcodes 1e-5

  let xs = tokens.map((t) => row(w.token_embedding_table, t, dim));
  for (let l = 0; l < c.nLayers; l++) {
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    for (let t = 0; t < xs.length; t++) {
      const xb = rmsnorm(xs[t]!, w.rms_att_weight, l * dim, eps);
      const qt = matvec(w.wq, l * dim * dim, xb, dim, dim);
      const kt = matvec(w.wk, l * kv * dim, xb, dim, kv);
      const vt = matvec(w.wv, l * kv * dim, xb, dim, kv);
      // run.c rotates q over all of dim and k only for i < kv_dim; same pair formula
      ropeLlama2c(qt, dim, hs, pos[t]!);
      ropeLlama2c(kt, kv, hs, pos[t]!);
      q.push(qt);
      k.push(kt);
      v.push(vt);
    }
    const att = attention(q, k, v, c.nHeads, c.nKvHeads, hs);
    xs = xs.map((x, t) => {
      const o = matvec(w.wo, l * dim * dim, att[t]!, dim, dim);
      const x1 = x.map((xi, i) => xi + o[i]!);
      const xb = rmsnorm(x1, w.rms_ffn_weight, l * dim, eps);
      const h1 = matvec(w.w1, l * hid * dim, xb, dim, hid);
      const h3 = matvec(w.w3, l * hid * dim, xb, dim, hid);
      const g = h1.map((a, i) => silu(a) * h3[i]!);
      const f = matvec(w.w2, l * dim * hid, g, hid, dim);
      return x1.map((xi, i) => xi + f[i]!);
    });
  }
  return xs.map((x) => matvec(w.wcls, 0, rmsnorm(x, w.rms_final_weight, 0, eps), dim, c.vocabSize));
}

// ---- (b) Hugging Face LlamaForCausalLM forward ----

/** HF rotate_half RoPE on one head vector of length D starting at `off`, in place. */
function ropeHf(vec: Float64Array, off: number, D: number, pos: number, theta: number): void {
  const half = D / 2;
  for (let j = 0; j < half; j++) {
    const invFreq = 1 / Math.pow(theta, (2 * j) / D);
    const ang = pos * invFreq;
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const a = vec[off + j]!; // first half
    const b = vec[off + j + half]!; // second half
    // q*cos + rotate_half(q)*sin with rotate_half(q) = [-q2, q1]
    vec[off + j] = a * c - b * s;
    vec[off + j + half] = b * c + a * s;
  }
}

export function forwardHfLlama(cfg: HfLlamaConfig, w: HfLlamaWeights, tokens: number[], positions?: number[]): Float64Array[] {
  const pos = checkTokens(tokens, cfg.vocabSize, positions);
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const nH = cfg.numHeads;
  const nKv = cfg.numKvHeads;
  const D = H / nH;
  if (w.layers.length !== cfg.numLayers) throw new Error("reference forward: layer count mismatch");

  let xs = tokens.map((t) => row(w.embedTokens, t, H));
  for (const L of w.layers) {
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    for (let t = 0; t < xs.length; t++) {
      const xb = rmsnorm(xs[t]!, L.inputLayernorm, 0, cfg.rmsNormEps);
      const qt = matvec(L.qProj, 0, xb, H, nH * D);
      const kt = matvec(L.kProj, 0, xb, H, nKv * D);
      const vt = matvec(L.vProj, 0, xb, H, nKv * D);
      for (let h = 0; h < nH; h++) ropeHf(qt, h * D, D, pos[t]!, cfg.ropeTheta);
      for (let h = 0; h < nKv; h++) ropeHf(kt, h * D, D, pos[t]!, cfg.ropeTheta);
      q.push(qt);
      k.push(kt);
      v.push(vt);
    }
    const att = attention(q, k, v, nH, nKv, D);
    xs = xs.map((x, t) => {
      const o = matvec(L.oProj, 0, att[t]!, nH * D, H);
      const x1 = x.map((xi, i) => xi + o[i]!);
      const xb = rmsnorm(x1, L.postAttentionLayernorm, 0, cfg.rmsNormEps);
      const g = matvec(L.gateProj, 0, xb, H, I);
      const u = matvec(L.upProj, 0, xb, H, I);
      const m = g.map((a, i) => silu(a) * u[i]!);
      const f = matvec(L.downProj, 0, m, I, H);
      return x1.map((xi, i) => xi + f[i]!);
    });
  }
  return xs.map((x) => matvec(w.lmHead, 0, rmsnorm(x, w.norm, 0, cfg.rmsNormEps), H, cfg.vocabSize));
}

// ---- llama2.c -> HF conversion ----

/**
 * HF convert_llama_weights_to_hf permute: view W [nHeads*D, H] as [nHeads, D/2, 2, H],
 * swap the (D/2, 2) axes, reshape back. New row h*D + t*(D/2) + j = old row h*D + 2j + t,
 * which turns adjacent-pair RoPE into rotate_half RoPE.
 */
function permuteRows(w: Float32Array, off: number, nHeads: number, D: number, H: number): Float32Array {
  const out = new Float32Array(nHeads * D * H);
  const half = D / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const src = off + (h * D + 2 * j + t) * H;
        const dst = (h * D + t * half + j) * H;
        for (let c = 0; c < H; c++) out[dst + c] = w[src + c]!;
      }
    }
  }
  return out;
}

export function llama2cToHf(model: Llama2cModel): { cfg: HfLlamaConfig; w: HfLlamaWeights } {
  const c = model.config;
  const w = model.weights;
  const dim = c.dim;
  const hid = c.hiddenDim;
  const hs = headSize(c);
  const kv = kvDim(c);
  const slice = (a: Float32Array, off: number, n: number): Float32Array => a.slice(off, off + n);
  const layers: HfLlamaLayer[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    layers.push({
      inputLayernorm: slice(w.rms_att_weight, l * dim, dim),
      qProj: permuteRows(w.wq, l * dim * dim, c.nHeads, hs, dim),
      kProj: permuteRows(w.wk, l * kv * dim, c.nKvHeads, hs, dim),
      vProj: slice(w.wv, l * kv * dim, kv * dim),
      oProj: slice(w.wo, l * dim * dim, dim * dim),
      postAttentionLayernorm: slice(w.rms_ffn_weight, l * dim, dim),
      gateProj: slice(w.w1, l * hid * dim, hid * dim),
      upProj: slice(w.w3, l * hid * dim, hid * dim),
      downProj: slice(w.w2, l * dim * hid, dim * hid),
    });
  }
  return {
    cfg: {
      hiddenSize: dim,
      intermediateSize: hid,
      numLayers: c.nLayers,
      numHeads: c.nHeads,
      numKvHeads: c.nKvHeads,
      vocabSize: c.vocabSize,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
    },
    w: {
      embedTokens: w.token_embedding_table.slice(),
      layers,
      norm: w.rms_final_weight.slice(),
      // wcls is the embedding table itself when shared, so this covers both cases
      lmHead: w.wcls.slice(),
    },
  };
}
