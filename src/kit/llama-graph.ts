// Builds a Llama decoder as an ONNX graph with the inputs and outputs of Hugging Face Optimum's
// "text-generation-with-past" export, which transformers.js loads:
//   input_ids [batch, seq], attention_mask [batch, past + seq], position_ids [batch, seq],
//   past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]
//   -> logits [batch, seq, vocab], present.{i}.key|value [batch, kv_heads, past + seq, head_dim]
// Rotary embeddings use Hugging Face's rotate_half convention; checkpoints that rotate adjacent pairs
// (llama2.c) have their q/k rows permuted on import instead.
import { DataType, GraphBuilder, floatBytes, type DeferredBytes, type ModelProto } from "../model/onnx.js";
import { headDim, type LlamaConfig } from "./llama-config.js";

/**
 * A weight whose values are read only when the model is written, so that an import holds one tensor at a time
 * rather than the model: `length` values, `load` returning them as the graph stores them.
 */
export interface DeferredWeight {
  length: number;
  load(): Promise<Float32Array>;
}

/**
 * One decoder block's weights; projection matrices are stored [in, out] so they feed MatMul directly. `T` is
 * Float32Array for weights in memory (the kit's models), DeferredWeight for a streamed import.
 */
export interface LlamaLayerWeights<T = Float32Array> {
  inputNorm: T;
  q: T;
  k: T;
  v: T;
  o: T;
  postNorm: T;
  gate: T;
  up: T;
  down: T;
  /** q/k/v projection biases (Qwen2); absent in Llama. */
  qBias?: T;
  kBias?: T;
  vBias?: T;
  /** Per-head RMSNorm weights [head_dim] of q and k after their projections (Qwen3); absent elsewhere. */
  qNorm?: T;
  kNorm?: T;
}

export interface LlamaWeights<T = Float32Array> {
  /** [vocab, hidden] */
  embed: T;
  layers: LlamaLayerWeights<T>[];
  norm: T;
  /** [hidden, vocab]; absent when the embeddings are tied (the head is the transposed embedding). */
  lmHead?: T;
}

export type WeightData = Float32Array | DeferredWeight;

/** The graph, its deferred weights' initializers left empty: their bytes (in the graph's float type) by name. */
export interface LlamaModel {
  model: ModelProto;
  deferred: Map<string, DeferredBytes>;
}

/** [rows, cols] row-major (a checkpoint's out x in) -> [cols, rows] (MatMul's in x out). */
export function transposeRows(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
}

export const OPSET = 17;
export type WeightType = "fp32" | "fp16";
// A large finite negative rather than -inf: a fully masked row (left padding) must stay finite, or NaN
// would leak into real tokens through 0 x NaN in the value MatMul. Scores are far below float32's ulp at
// this magnitude, so a masked row's entries stay equal and its softmax uniform.
const MASKED_SCORE = -3.4e38;
// fp16 tops out at 65504 and a bias near it would overflow to -inf with the scores added; -1e4 already
// gives exp(...) = 0.
const MASKED_SCORE_FP16 = -1e4;

/** Rotary tables [maxPositions, headDim], each half duplicated as rotate_half expects. */
export function rotaryTables(cfg: LlamaConfig): { cos: Float32Array; sin: Float32Array } {
  const d = headDim(cfg);
  const half = d / 2;
  const cos = new Float32Array(cfg.maxPositions * d);
  const sin = new Float32Array(cfg.maxPositions * d);
  for (let p = 0; p < cfg.maxPositions; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p / wavelengthOver2Pi(cfg, Math.pow(cfg.ropeTheta, (2 * j) / d));
      cos[p * d + j] = cos[p * d + j + half] = Math.cos(angle);
      sin[p * d + j] = sin[p * d + j + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * 1 / the rotary frequency, from the unscaled `base` (theta^(2j/D)); Llama 3 stretches the low frequencies by
 * `factor` and blends the middle band, as transformers' _compute_llama3_parameters does.
 */
function wavelengthOver2Pi(cfg: LlamaConfig, base: number): number {
  const s = cfg.ropeScaling;
  if (!s) return base;
  const wavelen = 2 * Math.PI * base;
  if (wavelen < s.originalMaxPositions / s.highFreqFactor) return base;
  if (wavelen > s.originalMaxPositions / s.lowFreqFactor) return base * s.factor;
  const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return 1 / (((1 - smooth) / s.factor + smooth) / base);
}

/** Adds a weight initializer in the graph's floating-point type. */
type AddWeight = (name: string, dims: number[], data: WeightData) => string;

/** What every decoder block is built from: the graph, its float type, and the constants and ops all blocks share. */
interface BlockParts {
  g: GraphBuilder;
  cfg: LlamaConfig;
  F: DataType;
  weight: AddWeight;
  maskBias: string;
  scale: string;
  rmsNorm: (x: string, weight: string) => string;
  rotate: (x: string) => string;
  /** The MLP's gate activation. */
  activate: (x: string) => string;
  /** [batch, seq, n * D] -> [batch, n, seq, D] */
  splitHeads: (x: string, n: number) => string;
}

/** `fp16` stores every floating-point tensor (weights, inputs, outputs) as float16, like Optimum's fp16 exports. */
export function buildLlamaModel(cfg: LlamaConfig, w: LlamaWeights<WeightData>, producer: string, dtype: WeightType = "fp32"): LlamaModel {
  const g = new GraphBuilder();
  const F = dtype === "fp16" ? DataType.FLOAT16 : DataType.FLOAT;
  const deferred = new Map<string, DeferredBytes>();
  const weight: AddWeight = (name, dims, data) => {
    if (data instanceof Float32Array) return g.floatInitializer(name, F, dims, data);
    deferred.set(name, { byteLength: data.length * (F === DataType.FLOAT16 ? 2 : 4), read: async () => floatBytes(await data.load(), F) });
    return g.emptyInitializer(name, F, dims);
  };
  const scalar = (v: number) => g.float([v], [], F);
  const H = cfg.hiddenSize;

  const inputIds = g.input("input_ids", DataType.INT64, ["batch_size", "sequence_length"]);
  const attentionMask = g.input("attention_mask", DataType.INT64, ["batch_size", "total_sequence_length"]);
  const positionIds = g.input("position_ids", DataType.INT64, ["batch_size", "sequence_length"]);

  const embed = weight("model.embed_tokens.weight", [cfg.vocabSize, H], w.embed);
  let h = g.op1("Gather", [embed, inputIds], { axis: 0 });
  // Gemma scales the looked-up rows only; its tied head uses the embedding as stored.
  if (cfg.embedScale !== undefined) h = g.op1("Mul", [h, scalar(cfg.embedScale)]);
  // Node and constant names are numbered in creation order: the parts below are built in this order.
  const rotary = rotaryAtPositions(g, cfg, weight, positionIds);
  const maskBias = attentionBias(g, inputIds, attentionMask, scalar, dtype === "fp16" ? MASKED_SCORE_FP16 : MASKED_SCORE);
  const parts = blockParts(g, cfg, F, weight, scalar, rotary, maskBias);
  for (let i = 0; i < cfg.numLayers; i++) h = decoderBlock(parts, i, w.layers[i]!, h);

  const final = parts.rmsNorm(h, weight("model.norm.weight", [H], w.norm));
  const head = w.lmHead ? weight("lm_head.MatMul.weight", [H, cfg.vocabSize], w.lmHead) : g.op1("Transpose", [embed], { perm: [1, 0] });
  g.op1("MatMul", [final, head], {}, "logits");
  g.output("logits", F, ["batch_size", "sequence_length", cfg.vocabSize]);
  g.outputs.unshift(g.outputs.pop()!); // Optimum lists logits before the present tensors

  return { model: g.toModel({ name: "llama", opset: OPSET, producer }), deferred };
}

/** cos/sin gathered by position_ids: [batch, 1, seq, D], broadcast over heads. */
function rotaryAtPositions(g: GraphBuilder, cfg: LlamaConfig, weight: AddWeight, positionIds: string): { cos: string; sin: string } {
  const D = headDim(cfg);
  const tables = rotaryTables(cfg);
  const cosTable = weight("model.rotary_emb.cos_cache", [cfg.maxPositions, D], tables.cos);
  const sinTable = weight("model.rotary_emb.sin_cache", [cfg.maxPositions, D], tables.sin);
  const axis1 = g.int64([1]);
  const cos = g.op1("Unsqueeze", [g.op1("Gather", [cosTable, positionIds], { axis: 0 }), axis1]);
  const sin = g.op1("Unsqueeze", [g.op1("Gather", [sinTable, positionIds], { axis: 0 }), axis1]);
  return { cos, sin };
}

/**
 * An additive bias [batch, 1, 1, seq, total], built once: 0 where query i (absolute position past + i) may see
 * key j (causal and not padding), `masked` elsewhere. Adding it broadcasts far faster than a Where over every
 * head's scores.
 */
function attentionBias(g: GraphBuilder, inputIds: string, attentionMask: string, scalar: (v: number) => string, masked: number): string {
  const seqLen = g.op1("Shape", [inputIds], { start: 1, end: 2 });
  const totalLen = g.op1("Shape", [attentionMask], { start: 1, end: 2 });
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const squeeze0 = g.int64([0]);
  const queryPos = g.op1("Add", [
    g.op1("Range", [zero, g.op1("Squeeze", [seqLen, squeeze0]), one]),
    g.op1("Squeeze", [g.op1("Sub", [totalLen, seqLen]), squeeze0]),
  ]);
  const keyPos = g.op1("Range", [zero, g.op1("Squeeze", [totalLen, squeeze0]), one]);
  const causal = g.op1("LessOrEqual", [g.op1("Unsqueeze", [keyPos, g.int64([0])]), g.op1("Unsqueeze", [queryPos, g.int64([1])])]);
  const notPadding = g.op1("Unsqueeze", [g.op1("Cast", [attentionMask], { to: DataType.BOOL }), g.int64([1, 2, 3])]);
  const allowed = g.op1("And", [causal, notPadding]);
  return g.op1("Where", [allowed, scalar(0), scalar(masked)]);
}

/** The constants (attention scale, norm epsilon, rotary split) and ops every decoder block shares. */
function blockParts(
  g: GraphBuilder,
  cfg: LlamaConfig,
  F: DataType,
  weight: AddWeight,
  scalar: (v: number) => string,
  { cos, sin }: { cos: string; sin: string },
  maskBias: string,
): BlockParts {
  const D = headDim(cfg);
  const scale = scalar(1 / Math.sqrt(D));
  const eps = scalar(cfg.rmsNormEps);
  const rmsNorm = (x: string, weight: string): string => {
    const meanSquare = g.op1("ReduceMean", [g.op1("Mul", [x, x])], { axes: [-1], keepdims: 1 });
    return g.op1("Mul", [g.op1("Div", [x, g.op1("Sqrt", [g.op1("Add", [meanSquare, eps])])]), weight]);
  };
  const halfSplit = g.int64([D / 2, D / 2]);
  const rotate = (x: string): string => {
    const [x1, x2] = g.op("Split", [x, halfSplit], { axis: -1 }, 2);
    const rotated = g.op1("Concat", [g.op1("Neg", [x2!]), x1!], { axis: -1 });
    return g.op1("Add", [g.op1("Mul", [x, cos]), g.op1("Mul", [rotated, sin])]);
  };
  const splitHeads = (x: string, n: number) => g.op1("Transpose", [g.op1("Reshape", [x, g.int64([0, 0, n, D])])], { perm: PERM_0213 });
  const activate = cfg.hiddenAct === "gelu_pytorch_tanh" ? geluTanh(g, scalar) : (x: string) => g.op1("Mul", [x, g.op1("Sigmoid", [x])]);
  return { g, cfg, F, weight, maskBias, scale, rmsNorm, rotate, splitHeads, activate };
}

/** torch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))); opset 17 has no Gelu. */
function geluTanh(g: GraphBuilder, scalar: (v: number) => string): (x: string) => string {
  const [half, one, kappa, beta] = [0.5, 1, 0.044715, Math.sqrt(2 / Math.PI)].map(scalar);
  return (x) => {
    const cube = g.op1("Mul", [g.op1("Mul", [x, x]), x]);
    const inner = g.op1("Mul", [g.op1("Add", [x, g.op1("Mul", [cube, kappa!])]), beta!]);
    return g.op1("Mul", [g.op1("Mul", [x, half!]), g.op1("Add", [g.op1("Tanh", [inner]), one!])]);
  };
}

const PERM_0213 = [0, 2, 1, 3];

/** Multiplies by the projection matrix `name` of a block ([inDim, outDim], named as Optimum names it). */
type Projection = (x: string, name: string, data: WeightData, inDim: number, outDim: number) => string;

/** Decoder block i: attention and then a gated (SwiGLU, or GeGLU) MLP, each on the RMS-normed stream and added back to it. */
function decoderBlock(parts: BlockParts, i: number, L: LlamaLayerWeights<WeightData>, h: string): string {
  const { g, cfg, weight, rmsNorm } = parts;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const p = `model.layers.${i}`;
  const matmul: Projection = (x, name, data, inDim, outDim) =>
    g.op1("MatMul", [x, weight(`${p}.${name}.MatMul.weight`, [inDim, outDim], data)]);

  const x = rmsNorm(h, weight(`${p}.input_layernorm.weight`, [H], L.inputNorm));
  h = g.op1("Add", [h, selfAttention(parts, i, L, x, matmul)]);

  const y = rmsNorm(h, weight(`${p}.post_attention_layernorm.weight`, [H], L.postNorm));
  const gate = matmul(y, "mlp.gate_proj", L.gate, H, I);
  const act = g.op1("Mul", [parts.activate(gate), matmul(y, "mlp.up_proj", L.up, H, I)]);
  return g.op1("Add", [h, matmul(act, "mlp.down_proj", L.down, I, H)]);
}

/** Block i's attention over its past and the new tokens (output present.{i}.key|value), projected back by o_proj. */
function selfAttention(parts: BlockParts, i: number, L: LlamaLayerWeights<WeightData>, x: string, matmul: Projection): string {
  const { g, cfg, F, rotate, splitHeads } = parts;
  const H = cfg.hiddenSize;
  const D = headDim(cfg);
  const nH = cfg.numHeads;
  const nKv = cfg.numKvHeads;
  const project = (name: string, data: WeightData, outDim: number, bias?: WeightData): string => {
    const y = matmul(x, `self_attn.${name}`, data, H, outDim);
    return bias ? g.op1("Add", [y, parts.weight(`model.layers.${i}.self_attn.${name}.bias`, [outDim], bias)]) : y;
  };
  // The norm runs over the last axis, head_dim, so it may follow the heads' transpose.
  const headNorm = (x: string, name: string, data?: WeightData) =>
    data ? parts.rmsNorm(x, parts.weight(`model.layers.${i}.self_attn.${name}.weight`, [D], data)) : x;
  const q = rotate(headNorm(splitHeads(project("q_proj", L.q, nH * D, L.qBias), nH), "q_norm", L.qNorm));
  const k = rotate(headNorm(splitHeads(project("k_proj", L.k, nKv * D, L.kBias), nKv), "k_norm", L.kNorm));
  const v = splitHeads(project("v_proj", L.v, nKv * D, L.vBias), nKv);
  const pastKey = g.input(`past_key_values.${i}.key`, F, ["batch_size", nKv, "past_sequence_length", D]);
  const pastValue = g.input(`past_key_values.${i}.value`, F, ["batch_size", nKv, "past_sequence_length", D]);
  const keys = g.op1("Concat", [pastKey, k], { axis: 2 }, `present.${i}.key`);
  const values = g.op1("Concat", [pastValue, v], { axis: 2 }, `present.${i}.value`);
  g.output(keys, F, ["batch_size", nKv, "total_sequence_length", D]);
  g.output(values, F, ["batch_size", nKv, "total_sequence_length", D]);

  // Grouped-query attention without copying kv heads: queries as [batch, kv, group, seq, D]
  // against keys [batch, kv, 1, D, total] broadcast over the group (head h uses kv head h / group).
  // Scaling q ([seq, D] per head) is cheaper than scaling the scores ([seq, total] per head).
  const qGrouped = g.op1("Reshape", [g.op1("Mul", [q, parts.scale]), g.int64([0, nKv, nH / nKv, -1, D])]);
  const kT = g.op1("Unsqueeze", [g.op1("Transpose", [keys], { perm: [0, 1, 3, 2] }), g.int64([2])]);
  const scores = g.op1("MatMul", [qGrouped, kT]);
  const probs = g.op1("Softmax", [g.op1("Add", [scores, parts.maskBias])], { axis: -1 });
  const context = g.op1("MatMul", [probs, g.op1("Unsqueeze", [values, g.int64([2])])]);
  const merged = g.op1("Reshape", [
    g.op1("Transpose", [g.op1("Reshape", [context, g.int64([0, nH, -1, D])])], { perm: PERM_0213 }),
    g.int64([0, 0, nH * D]),
  ]);
  return matmul(merged, "self_attn.o_proj", L.o, nH * D, H);
}
