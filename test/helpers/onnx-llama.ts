// Runs an ONNX Llama folder with onnxruntime-node directly (batch, padding, past_key_values),
// and reads its weights back from the ONNX initializers for the reference forward pass.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import * as ort from "onnxruntime-node";
import type { HfLlamaConfig, HfLlamaWeights } from "../reference/llama-forward.js";

export interface FolderConfig {
  num_hidden_layers: number;
  num_key_value_heads: number;
  num_attention_heads: number;
  hidden_size: number;
  intermediate_size: number;
  head_dim: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
}

export function readFolderConfig(dir: string): FolderConfig {
  return JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as FolderConfig;
}

export const i64 = (values: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(values.map(BigInt)), dims);

export function emptyPast(cfg: FolderConfig, batch: number, type: "float32" | "float16" = "float32"): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const dims = [batch, cfg.num_key_value_heads, 0, cfg.head_dim];
  for (let i = 0; i < cfg.num_hidden_layers; i++)
    for (const kv of ["key", "value"])
      feeds[`past_key_values.${i}.${kv}`] =
        type === "float16" ? new ort.Tensor("float16", new Uint16Array(0), dims) : new ort.Tensor("float32", new Float32Array(0), dims);
  return feeds;
}

export function pastFrom(out: ort.InferenceSession.OnnxValueMapType, cfg: FolderConfig): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cfg.num_hidden_layers; i++)
    for (const kv of ["key", "value"]) feeds[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`] as ort.Tensor;
  return feeds;
}

/** Transformers' convention: positions count real tokens; padding positions get 1. */
export function positionsFromMask(mask: number[][]): number[][] {
  return mask.map((row) => {
    let p = -1;
    return row.map((m) => (m ? ++p : 1));
  });
}

/** The feeds of a padded batch in one forward pass. */
export function batchFeeds(
  cfg: FolderConfig,
  ids: number[][],
  mask: number[][],
  pastType: "float32" | "float16" = "float32",
): Record<string, ort.Tensor> {
  const B = ids.length;
  const S = ids[0]!.length;
  return {
    input_ids: i64(ids.flat(), [B, S]),
    attention_mask: i64(mask.flat(), [B, S]),
    position_ids: i64(positionsFromMask(mask).flat(), [B, S]),
    ...emptyPast(cfg, B, pastType),
  };
}

/** Logits [batch][position][vocab] of a padded batch in one forward pass. */
export async function batchLogits(
  session: ort.InferenceSession,
  cfg: FolderConfig,
  ids: number[][],
  mask: number[][],
): Promise<Float32Array[][]> {
  const out = await session.run(batchFeeds(cfg, ids, mask));
  return splitLogits(out.logits as ort.Tensor, ids.length, ids[0]!.length, cfg.vocab_size);
}

export function splitLogits(t: ort.Tensor, B: number, S: number, V: number): Float32Array[][] {
  const data = t.data as Float32Array;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => data.subarray((b * S + s) * V, (b * S + s + 1) * V)));
}

/** Reads the folder's ONNX initializers into the reference's PyTorch-layout weights ([out, in]). */
export function hfWeightsFromOnnx(dir: string): { cfg: HfLlamaConfig; w: HfLlamaWeights } {
  const c = readFolderConfig(dir);
  const model = fromBinary(ModelProtoSchema, readFileSync(join(dir, "onnx/model.onnx")));
  const byName = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  const get = (name: string): { data: Float32Array; dims: number[] } => {
    const t = byName.get(name);
    if (!t) throw new Error(`no initializer ${name}`);
    const raw = t.rawData;
    const data = new Float32Array(raw.byteLength / 4);
    new Uint8Array(data.buffer).set(raw);
    return { data, dims: t.dims.map(Number) };
  };
  // MatMul weights are stored [in, out]; the reference wants [out, in].
  const linear = (name: string): Float32Array => {
    const { data, dims } = get(name);
    const [rows, cols] = dims as [number, number];
    const t = new Float32Array(data.length);
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) t[k * rows + r] = data[r * cols + k]!;
    return t;
  };
  const embed = get("model.embed_tokens.weight").data;
  const layers = Array.from({ length: c.num_hidden_layers }, (_, i) => {
    const p = `model.layers.${i}`;
    return {
      inputLayernorm: get(`${p}.input_layernorm.weight`).data,
      qProj: linear(`${p}.self_attn.q_proj.MatMul.weight`),
      kProj: linear(`${p}.self_attn.k_proj.MatMul.weight`),
      vProj: linear(`${p}.self_attn.v_proj.MatMul.weight`),
      oProj: linear(`${p}.self_attn.o_proj.MatMul.weight`),
      postAttentionLayernorm: get(`${p}.post_attention_layernorm.weight`).data,
      gateProj: linear(`${p}.mlp.gate_proj.MatMul.weight`),
      upProj: linear(`${p}.mlp.up_proj.MatMul.weight`),
      downProj: linear(`${p}.mlp.down_proj.MatMul.weight`),
    };
  });
  return {
    cfg: {
      hiddenSize: c.hidden_size,
      intermediateSize: c.intermediate_size,
      numLayers: c.num_hidden_layers,
      numHeads: c.num_attention_heads,
      numKvHeads: c.num_key_value_heads,
      vocabSize: c.vocab_size,
      rmsNormEps: c.rms_norm_eps,
      ropeTheta: c.rope_theta,
    },
    w: {
      embedTokens: embed,
      layers,
      norm: get("model.norm.weight").data,
      lmHead: c.tie_word_embeddings ? embed : linear("lm_head.MatMul.weight"),
    },
  };
}
