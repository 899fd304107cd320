// Builds a Llama decoder as an ONNX graph with the inputs and outputs of Hugging Face Optimum's
// "text-generation-with-past" export, which transformers.js loads:
//   input_ids [batch, seq], attention_mask [batch, past + seq], position_ids [batch, seq],
//   past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]
//   -> logits [batch, seq, vocab], present.{i}.key|value [batch, kv_heads, past + seq, head_dim]
// Rotary embeddings use Hugging Face's rotate_half convention; checkpoints that rotate adjacent pairs
// (llama2.c) have their q/k rows permuted on import instead.
import { DataType, GraphBuilder, type ModelProto } from "../model/onnx.js";
import { headDim, type LlamaConfig } from "./llama-config.js";

/** One decoder block's weights; projection matrices are stored [in, out] so they feed MatMul directly. */
export interface LlamaLayerWeights {
  inputNorm: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  postNorm: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

export interface LlamaWeights {
  /** [vocab, hidden] */
  embed: Float32Array;
  layers: LlamaLayerWeights[];
  norm: Float32Array;
  /** [hidden, vocab]; absent when the embeddings are tied (the head is the transposed embedding). */
  lmHead?: Float32Array;
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
      const angle = p / Math.pow(cfg.ropeTheta, (2 * j) / d);
      cos[p * d + j] = cos[p * d + j + half] = Math.cos(angle);
      sin[p * d + j] = sin[p * d + j + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** `fp16` stores every floating-point tensor (weights, inputs, outputs) as float16, like Optimum's fp16 exports. */
export function buildLlamaModel(cfg: LlamaConfig, w: LlamaWeights, producer: string, dtype: WeightType = "fp32"): ModelProto {
  const g = new GraphBuilder();
  const F = dtype === "fp16" ? DataType.FLOAT16 : DataType.FLOAT;
  const weight = (name: string, dims: number[], data: Float32Array) => g.floatInitializer(name, F, dims, data);
  const scalar = (v: number) => g.float([v], [], F);
  const H = cfg.hiddenSize;
  const D = headDim(cfg);
  const nH = cfg.numHeads;
  const nKv = cfg.numKvHeads;
  const groups = nH / nKv;
  const I = cfg.intermediateSize;

  const inputIds = g.input("input_ids", DataType.INT64, ["batch_size", "sequence_length"]);
  const attentionMask = g.input("attention_mask", DataType.INT64, ["batch_size", "total_sequence_length"]);
  const positionIds = g.input("position_ids", DataType.INT64, ["batch_size", "sequence_length"]);

  const embed = weight("model.embed_tokens.weight", [cfg.vocabSize, H], w.embed);
  let h = g.op1("Gather", [embed, inputIds], { axis: 0 });

  // cos/sin gathered by position_ids: [batch, 1, seq, D], broadcast over heads.
  const tables = rotaryTables(cfg);
  const cosTable = weight("model.rotary_emb.cos_cache", [cfg.maxPositions, D], tables.cos);
  const sinTable = weight("model.rotary_emb.sin_cache", [cfg.maxPositions, D], tables.sin);
  const axis1 = g.int64([1]);
  const cos = g.op1("Unsqueeze", [g.op1("Gather", [cosTable, positionIds], { axis: 0 }), axis1]);
  const sin = g.op1("Unsqueeze", [g.op1("Gather", [sinTable, positionIds], { axis: 0 }), axis1]);

  // allowed[b, 1, 1, i, j]: query i (absolute position past + i) may see key j — causal and not padding.
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
  // An additive bias [batch, 1, 1, seq, total], built once: adding it broadcasts far faster than a Where
  // over every head's scores.
  const maskBias = g.op1("Where", [allowed, scalar(0), scalar(dtype === "fp16" ? MASKED_SCORE_FP16 : MASKED_SCORE)]);
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
  const headsShape = (n: number) => g.int64([0, 0, n, D]);
  const perm0213 = [0, 2, 1, 3];
  // [batch, seq, hidden] -> [batch, n, seq, D]
  const splitHeads = (x: string, n: number) => g.op1("Transpose", [g.op1("Reshape", [x, headsShape(n)])], { perm: perm0213 });

  for (let i = 0; i < cfg.numLayers; i++) {
    const L = w.layers[i]!;
    const p = `model.layers.${i}`;
    const matmul = (x: string, name: string, data: Float32Array, inDim: number, outDim: number) =>
      g.op1("MatMul", [x, weight(`${p}.${name}.MatMul.weight`, [inDim, outDim], data)]);

    const x = rmsNorm(h, weight(`${p}.input_layernorm.weight`, [H], L.inputNorm));
    const q = rotate(splitHeads(matmul(x, "self_attn.q_proj", L.q, H, nH * D), nH));
    const k = rotate(splitHeads(matmul(x, "self_attn.k_proj", L.k, H, nKv * D), nKv));
    const v = splitHeads(matmul(x, "self_attn.v_proj", L.v, H, nKv * D), nKv);
    const pastKey = g.input(`past_key_values.${i}.key`, F, ["batch_size", nKv, "past_sequence_length", D]);
    const pastValue = g.input(`past_key_values.${i}.value`, F, ["batch_size", nKv, "past_sequence_length", D]);
    const keys = g.op1("Concat", [pastKey, k], { axis: 2 }, `present.${i}.key`);
    const values = g.op1("Concat", [pastValue, v], { axis: 2 }, `present.${i}.value`);
    g.output(keys, F, ["batch_size", nKv, "total_sequence_length", D]);
    g.output(values, F, ["batch_size", nKv, "total_sequence_length", D]);

    // Grouped-query attention without copying kv heads: queries as [batch, kv, group, seq, D]
    // against keys [batch, kv, 1, D, total] broadcast over the group (head h uses kv head h / group).
    // Scaling q ([seq, D] per head) is cheaper than scaling the scores ([seq, total] per head).
    const qGrouped = g.op1("Reshape", [g.op1("Mul", [q, scale]), g.int64([0, nKv, groups, -1, D])]);
    const kT = g.op1("Unsqueeze", [g.op1("Transpose", [keys], { perm: [0, 1, 3, 2] }), g.int64([2])]);
    const scores = g.op1("MatMul", [qGrouped, kT]);
    const probs = g.op1("Softmax", [g.op1("Add", [scores, maskBias])], { axis: -1 });
    const context = g.op1("MatMul", [probs, g.op1("Unsqueeze", [values, g.int64([2])])]);
    const merged = g.op1("Reshape", [
      g.op1("Transpose", [g.op1("Reshape", [context, g.int64([0, nH, -1, D])])], { perm: perm0213 }),
      g.int64([0, 0, nH * D]),
    ]);
    h = g.op1("Add", [h, matmul(merged, "self_attn.o_proj", L.o, nH * D, H)]);

    const y = rmsNorm(h, weight(`${p}.post_attention_layernorm.weight`, [H], L.postNorm));
    const gate = matmul(y, "mlp.gate_proj", L.gate, H, I);
    const act = g.op1("Mul", [g.op1("Mul", [gate, g.op1("Sigmoid", [gate])]), matmul(y, "mlp.up_proj", L.up, H, I)]);
    h = g.op1("Add", [h, matmul(act, "mlp.down_proj", L.down, I, H)]);
  }

  const final = rmsNorm(h, weight("model.norm.weight", [H], w.norm));
  const head = w.lmHead ? weight("lm_head.MatMul.weight", [H, cfg.vocabSize], w.lmHead) : g.op1("Transpose", [embed], { perm: [1, 0] });
  g.op1("MatMul", [final, head], {}, "logits");
  g.output("logits", F, ["batch_size", "sequence_length", cfg.vocabSize]);
  g.outputs.unshift(g.outputs.pop()!); // Optimum lists logits before the present tensors

  return g.toModel({ name: "llama", opset: OPSET, producer });
}
