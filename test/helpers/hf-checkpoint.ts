// The kit's tiny model (its weights and tokenizer files) written as a Hugging Face checkpoint folder by the
// independent safetensors writer of test/reference: config.json, model.safetensors or shards with an index.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaWeights } from "../../src/kit/llama-graph.js";
import { TINY_DEFAULTS, tinyConfig, tinyWeights } from "../../src/kit/tiny.js";
import { safetensorsBytes, type RefDtype, type RefTensor } from "../reference/safetensors.js";

export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
export const cfg = tinyConfig(TINY_DEFAULTS);
export const weights = tinyWeights(cfg, TINY_DEFAULTS.seed);
const [H, I, V] = [cfg.hiddenSize, cfg.intermediateSize, cfg.vocabSize];
const kvWidth = (cfg.numKvHeads * H) / cfg.numHeads;

/** [rows, cols] -> [cols, rows]: the graph's [in, out] matrices back to nn.Linear's [out, in]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
}

/** The weights under transformers' names and shapes. */
function hfTensors(w: LlamaWeights): RefTensor[] {
  const t: RefTensor[] = [{ name: "model.embed_tokens.weight", shape: [V, H], data: w.embed }];
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    const linear = (name: string, data: Float32Array, inDim: number, out: number) =>
      t.push({ name: `${p}.${name}.weight`, shape: [out, inDim], data: transpose(data, inDim, out) });
    t.push({ name: `${p}.input_layernorm.weight`, shape: [H], data: l.inputNorm });
    linear("self_attn.q_proj", l.q, H, H);
    linear("self_attn.k_proj", l.k, H, kvWidth);
    linear("self_attn.v_proj", l.v, H, kvWidth);
    linear("self_attn.o_proj", l.o, H, H);
    t.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H], data: l.postNorm });
    linear("mlp.gate_proj", l.gate, H, I);
    linear("mlp.up_proj", l.up, H, I);
    linear("mlp.down_proj", l.down, I, H);
  });
  t.push({ name: "model.norm.weight", shape: [H], data: w.norm });
  if (w.lmHead) t.push({ name: "lm_head.weight", shape: [V, H], data: transpose(w.lmHead, H, V) });
  return t;
}

/** Every tensor of `w` through `round` (the values a bf16 or fp16 checkpoint stores). */
export function roundWeights(w: LlamaWeights, round: (a: Float32Array) => Float32Array): LlamaWeights {
  return {
    embed: round(w.embed),
    norm: round(w.norm),
    lmHead: w.lmHead && round(w.lmHead),
    layers: w.layers.map(
      (l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, round(v)])) as unknown as LlamaWeights["layers"][0],
    ),
  };
}

export const hfConfig = (extra: Record<string, unknown> = {}) => ({
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: H,
  intermediate_size: I,
  num_hidden_layers: cfg.numLayers,
  num_attention_heads: cfg.numHeads,
  num_key_value_heads: cfg.numKvHeads,
  vocab_size: V,
  max_position_embeddings: cfg.maxPositions,
  rms_norm_eps: cfg.rmsNormEps,
  rope_theta: cfg.ropeTheta,
  hidden_act: "silu",
  tie_word_embeddings: cfg.tieEmbeddings,
  ...extra,
});

export interface CheckpointOptions {
  dtype?: RefDtype;
  shards?: number;
  config?: Record<string, unknown>;
  /** Adds zero q/k/v projection biases (qwen2's). */
  qkvBias?: boolean;
  /** Adds per-head q_norm and k_norm weights (qwen3's): those of qkNormWeights. */
  qkNorm?: boolean;
  /** Edits the (first) file's header before it is written. */
  header?: (h: Record<string, any>) => void;
}

const headDim = H / cfg.numHeads;
/** Layer i's q_norm and k_norm weights [head_dim] as writeCheckpoint's qkNorm writes them: distinct, not ones. */
export function qkNormWeights(i: number): { qNorm: Float32Array; kNorm: Float32Array } {
  const at = (offset: number) => Float32Array.from({ length: headDim }, (_, j) => 1 + 0.05 * Math.sin(offset + 7 * i + j));
  return { qNorm: at(0), kNorm: at(100) };
}

/** A checkpoint folder of the tiny weights and the tokenizer files of the kit's tiny folder `tinyDir`. */
export function writeCheckpoint(dir: string, tinyDir: string, o: CheckpointOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfig(o.config)));
  for (const f of TOKENIZER_FILES) copyFileSync(join(tinyDir, f), join(dir, f));
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 1, eos_token_id: 2, do_sample: false }));
  const tensors = hfTensors(weights);
  if (o.qkvBias)
    for (let i = 0; i < cfg.numLayers; i++)
      for (const [n, width] of [
        ["q", H],
        ["k", kvWidth],
        ["v", kvWidth],
      ] as const)
        tensors.push({ name: `model.layers.${i}.self_attn.${n}_proj.bias`, shape: [width], data: new Float32Array(width) });
  if (o.qkNorm)
    for (let i = 0; i < cfg.numLayers; i++)
      for (const [n, data] of Object.entries(qkNormWeights(i)))
        tensors.push({ name: `model.layers.${i}.self_attn.${n === "qNorm" ? "q" : "k"}_norm.weight`, shape: [headDim], data });
  const shards = o.shards ?? 1;
  if (shards === 1) {
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors, o.dtype ?? "F32", o.header));
    return dir;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const mine = tensors.filter((_, i) => i % shards === s);
    for (const t of mine) weightMap[t.name] = file;
    writeFileSync(join(dir, file), safetensorsBytes(mine, o.dtype ?? "F32", s === 0 ? o.header : undefined));
  }
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}
