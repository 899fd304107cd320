// `dlc-prune model import-hf`: converts a Hugging Face checkpoint folder (config.json, safetensors weights,
// tokenizer files) of a Llama-architecture family (Llama, Mistral, Qwen2, Qwen3, Gemma) into the model folder
// dlc-prune scores. Whatever the graph builder does not implement is refused, naming the file and field, rather
// than scored approximately.
import { basename, join } from "node:path";
import { MAX_JSON_BYTES } from "../model/folder.js";
import { readRegularFile } from "../model/files.js";
import { openSafetensors, readTensorF32, type SafetensorsFile } from "../model/safetensors.js";
import { UserError } from "../util/errors.js";
import { assertEmptyOrMissingDir, exists } from "../util/fs.js";
import { isInside, realPathOf } from "../util/paths.js";
import { elementCount, formatBytes } from "../util/math.js";
import { headDim, llamaConfigProblem, type LlamaConfig } from "./llama-config.js";
import { transposeRows, type DeferredWeight, type LlamaLayerWeights, type LlamaWeights, type WeightType } from "./llama-graph.js";
import { writeOnnxFolder } from "./folder.js";

export const HF_MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3", "gemma"] as const;
type Family = (typeof HF_MODEL_TYPES)[number];
/** head_dim where config.json has none: transformers' config class defaults (qwen3's is not hidden / heads). */
const DEFAULT_HEAD_DIM: Partial<Record<Family, number>> = { qwen3: 128, gemma: 256 };
/** Families close to these that the graph does not build, and why (a near-miss import would score wrongly). */
const REFUSED_WHY: Record<string, string> = {
  gemma2: "its attention and final logits are soft-capped and its layers alternate sliding and global attention",
  gemma3: "its layers alternate sliding and global attention with two rotary bases",
  gemma3_text: "its layers alternate sliding and global attention with two rotary bases",
  phi3: "its fused qkv_proj and gate_up_proj are each ranked as one matrix by layer-scope masking; split, they would be masked differently",
};
const SINGLE = "model.safetensors";
const INDEX = "model.safetensors.index.json";
/** Copied verbatim (but see CHAT_TEMPLATE_FILE): the tokenizer, its chat template and the generation settings. */
const REQUIRED_FILES = ["tokenizer.json", "tokenizer_config.json"];
const OPTIONAL_FILES = ["special_tokens_map.json", "generation_config.json"];
/** Where transformers 4.4x and later save the chat template, instead of tokenizer_config.json's chat_template. */
const CHAT_TEMPLATE_FILE = "chat_template.jinja";

type Json = Record<string, unknown>;

async function readJson(path: string): Promise<{ bytes: Uint8Array; value: Json }> {
  const bytes = await readRegularFile(path, "a checkpoint's JSON file", MAX_JSON_BYTES, `the ${formatBytes(MAX_JSON_BYTES)} read`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new UserError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new UserError(`${path}: not a JSON object`);
  return { bytes, value: value as Json };
}

/** config.json's `key`, a positive number; `fallback` when absent. */
function num(j: Json, key: string, file: string, fallback?: number): number {
  const v = j[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0)) throw new UserError(`${file}: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Fails, naming the field, on anything the graph builder does not implement. */
function refuseUnsupported(j: Json, file: string): Family {
  const type = j.model_type;
  if (typeof type === "string" && REFUSED_WHY[type])
    throw new UserError(`${file}: model_type ${JSON.stringify(type)} is not supported: ${REFUSED_WHY[type]}`);
  if (!HF_MODEL_TYPES.includes(type as Family))
    throw new UserError(`${file}: model_type ${JSON.stringify(type)} is not supported (${HF_MODEL_TYPES.join(", ")})`);
  if (j.quantization_config != null)
    throw new UserError(`${file}: quantization_config: quantized checkpoints are not supported; import the unquantized weights`);
  if (type === "gemma") refuseGemmaUnsupported(j, file);
  else if ((j.hidden_act ?? "silu") !== "silu")
    throw new UserError(`${file}: hidden_act ${JSON.stringify(j.hidden_act)} is not supported (silu)`);
  for (const key of ["attention_bias", "mlp_bias"])
    if ((type === "llama" || type === "qwen3" || type === "gemma") && j[key] === true)
      throw new UserError(`${file}: ${key} true is not supported for ${type}`);
  return type as Family;
}

const GELU_TANH = "gelu_pytorch_tanh";

/** Gemma's activation is the tanh GELU: transformers 5 reads hidden_act ("gelu" meaning it), 4.x hidden_activation first. */
function refuseGemmaUnsupported(j: Json, file: string): void {
  if (![undefined, "gelu", GELU_TANH].includes(j.hidden_act as string))
    throw new UserError(`${file}: hidden_act ${JSON.stringify(j.hidden_act)} is not supported for gemma (${GELU_TANH})`);
  // Where the two fields disagree, transformers versions would score differently: refuse rather than pick one.
  if (j.hidden_activation != null && j.hidden_activation !== GELU_TANH)
    throw new UserError(`${file}: hidden_activation ${JSON.stringify(j.hidden_activation)} is not supported for gemma (${GELU_TANH})`);
  if (j.use_bidirectional_attention === true)
    throw new UserError(`${file}: use_bidirectional_attention true is not supported (the graph is causal)`);
}

const LLAMA3_KEYS = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"];

/** The rope settings: rope_parameters (transformers 5) or rope_scaling, never both; unscaled when neither. */
function ropeSource(j: Json, file: string): { p: Json; field: string } {
  if (j.rope_parameters != null && j.rope_scaling != null)
    throw new UserError(`${file}: rope_parameters and rope_scaling are both set; keep one (transformers 5 reads rope_parameters)`);
  if (j.partial_rotary_factor != null && j.partial_rotary_factor !== 1)
    throw new UserError(`${file}: partial_rotary_factor ${JSON.stringify(j.partial_rotary_factor)} is not supported (1)`);
  const field = j.rope_parameters != null ? "rope_parameters" : "rope_scaling";
  const p = j[field] ?? { rope_type: "default" };
  if (typeof p !== "object" || Array.isArray(p)) throw new UserError(`${file}: ${field} ${JSON.stringify(p)} is not an object`);
  return { p: p as Json, field };
}

/** Llama 3's scaling fields of `p` (config.json's `field`), checked. */
function llama3Scaling(j: Json, p: Json, file: string, field: string): NonNullable<LlamaConfig["ropeScaling"]> {
  if (j.original_max_position_embeddings != null)
    throw new UserError(
      `${file}: original_max_position_embeddings at the top level with llama3 rope scaling is not supported; set it in ${field}`,
    );
  const where = `${file}: ${field}`;
  const [factor, lowFreqFactor, highFreqFactor, originalMaxPositions] = LLAMA3_KEYS.map((k) => num(p, k, where));
  if (highFreqFactor! <= lowFreqFactor!)
    throw new UserError(`${where}: high_freq_factor ${highFreqFactor} must be greater than low_freq_factor ${lowFreqFactor}`);
  return {
    factor: factor!,
    lowFreqFactor: lowFreqFactor!,
    highFreqFactor: highFreqFactor!,
    originalMaxPositions: originalMaxPositions!,
  };
}

/**
 * The rotary base and scaling: unscaled or Llama 3's. The base is the rope settings' rope_theta when they have
 * one (as transformers 5 reads it), else config.json's rope_theta.
 */
function rope(j: Json, file: string): Pick<LlamaConfig, "ropeTheta" | "ropeScaling"> {
  const { p, field } = ropeSource(j, file);
  const ropeTheta = p.rope_theta != null ? num(p, "rope_theta", `${file}: ${field}`) : num(j, "rope_theta", file, 10000);
  const type = p.rope_type ?? p.type;
  const allowed = ["rope_type", "type", "rope_theta", ...(type === "llama3" ? LLAMA3_KEYS : [])];
  if ((type !== "default" && type !== "llama3") || Object.keys(p).some((k) => !allowed.includes(k)))
    throw new UserError(`${file}: ${field} ${JSON.stringify(p)} is not supported (unscaled, or rope_type llama3)`);
  if (type === "default") return { ropeTheta };
  return { ropeTheta, ropeScaling: llama3Scaling(j, p, file, field) };
}

/** The attention window when sliding-window attention is on, else undefined. */
function slidingWindow(j: Json, family: Family, file: string): number | undefined {
  if (family === "mistral") return j.sliding_window != null ? num(j, "sliding_window", file) : undefined;
  if (family !== "qwen2" && family !== "qwen3") return undefined;
  if (Array.isArray(j.layer_types)) return j.layer_types.includes("sliding_attention") ? num(j, "sliding_window", file) : undefined;
  // transformers' Qwen2Config and Qwen3Config: layers from max_window_layers (default 28) on slide, when a window is set.
  if (j.use_sliding_window !== true || j.sliding_window == null) return undefined;
  const firstSliding = j.max_window_layers ?? 28;
  return typeof firstSliding === "number" && typeof j.num_hidden_layers === "number" && firstSliding >= j.num_hidden_layers
    ? undefined
    : num(j, "sliding_window", file);
}

/** llamaConfigProblem's words as config.json's keys. */
const CONFIG_KEYS: Record<string, string> = {
  hiddenSize: "hidden_size",
  intermediateSize: "intermediate_size",
  numLayers: "num_hidden_layers",
  numHeads: "num_attention_heads",
  numKvHeads: "num_key_value_heads",
  headDim: "head_dim",
  vocabSize: "vocab_size",
  maxPositions: "max_position_embeddings",
  "hidden size": "hidden_size",
  "kv heads": "num_key_value_heads",
  heads: "num_attention_heads",
  "head dimension": "head dimension (hidden_size / num_attention_heads)",
};
/** `explicitHeadDim`: config.json sets head_dim, so the head dimension is that field. */
const inConfigKeys = (problem: string, explicitHeadDim: boolean) =>
  problem.replace(new RegExp(`\\b(${Object.keys(CONFIG_KEYS).join("|")})\\b`, "g"), (w) =>
    w === "head dimension" && explicitHeadDim ? "head_dim" : CONFIG_KEYS[w]!,
  );

/**
 * The graph's config. A sliding window shorter than max_position_embeddings becomes the model's window:
 * rows longer are truncated, and within the window sliding attention equals full attention.
 */
function llamaConfig(j: Json, family: Family, file: string): LlamaConfig {
  const window = slidingWindow(j, family, file);
  const firstId = (v: unknown) => (Array.isArray(v) ? v[0] : v);
  const config: LlamaConfig = {
    hiddenSize: num(j, "hidden_size", file),
    intermediateSize: num(j, "intermediate_size", file),
    numLayers: num(j, "num_hidden_layers", file),
    numHeads: num(j, "num_attention_heads", file),
    numKvHeads: num(j, "num_key_value_heads", file, j.num_attention_heads as number),
    // As transformers' attention modules read it: config.json's head_dim, else the family's default, else hidden / heads.
    headDim: j.head_dim != null ? num(j, "head_dim", file) : DEFAULT_HEAD_DIM[family],
    vocabSize: num(j, "vocab_size", file),
    maxPositions: Math.min(num(j, "max_position_embeddings", file), window ?? Infinity),
    rmsNormEps: num(j, "rms_norm_eps", file),
    ...rope(j, file),
    tieEmbeddings: (j.tie_word_embeddings ?? family === "gemma") === true, // GemmaConfig ties by default
    ...(family === "gemma" && {
      // sqrt(hidden_size) as transformers computes it, in the graph's float type like the model's dtype.
      embedScale: Math.sqrt(num(j, "hidden_size", file)),
      hiddenAct: GELU_TANH,
    }),
    // Only the kit's own config.json and generation_config.json use these; the import copies the checkpoint's.
    bosTokenId: Number(firstId(j.bos_token_id) ?? -1),
    eosTokenId: Number(firstId(j.eos_token_id) ?? -1),
  };
  const problem = llamaConfigProblem(config);
  if (problem) throw new UserError(`${file}: ${inConfigKeys(problem, config.headDim !== undefined)}`);
  return config;
}

/** Where each tensor is: the index's weight_map, or every tensor of model.safetensors. */
interface Weights {
  find(name: string): { file: SafetensorsFile; shape: number[] };
  close(): Promise<void>;
}

/** model.safetensors when it is there (as transformers loads it, even beside an index), else the index's shards. */
async function openWeights(dir: string): Promise<Weights> {
  const indexPath = join(dir, INDEX);
  if (!(await exists(join(dir, SINGLE)))) {
    if (await exists(indexPath)) return openSharded(indexPath, dir);
    throw new UserError(`${dir}: no weights: neither ${SINGLE} nor ${INDEX} (safetensors only)`);
  }
  const file = await openSafetensors(join(dir, SINGLE));
  return {
    find: (name) => {
      const entry = file.tensors.get(name);
      if (!entry) throw new UserError(`${file.path}: tensor ${name} is missing`);
      return { file, shape: entry.shape };
    },
    close: () => file.handle.close(),
  };
}

async function openSharded(indexPath: string, dir: string): Promise<Weights> {
  const map = (await readJson(indexPath)).value.weight_map as Record<string, unknown> | undefined;
  if (!map || typeof map !== "object") throw new UserError(`${indexPath}: no weight_map object`);
  const names = [...new Set(Object.values(map))].sort();
  for (const n of names)
    if (typeof n !== "string" || basename(n) !== n || n === "..")
      throw new UserError(`${indexPath}: weight_map names ${JSON.stringify(n)}, not a file beside it`);
  const files = new Map<string, SafetensorsFile>();
  try {
    for (const n of names as string[]) files.set(n, await openSafetensors(join(dir, n)));
  } catch (err) {
    for (const f of files.values()) await f.handle.close();
    throw err;
  }
  return {
    find: (name) => {
      const shard = map[name];
      if (shard === undefined) throw new UserError(`${indexPath}: tensor ${name} is missing from weight_map`);
      const file = files.get(shard as string)!;
      const entry = file.tensors.get(name);
      if (!entry) throw new UserError(`${file.path}: tensor ${name} is missing (${INDEX} places it there)`);
      return { file, shape: entry.shape };
    },
    close: async () => {
      for (const f of files.values()) await f.handle.close();
    },
  };
}

/** The largest finite fp16. */
const FP16_MAX = 65504;

type Transform = (values: Float32Array) => Float32Array;
/** The checkpoint's tensors, and whether the output is fp16. */
type Tensors = Weights & { fp16: boolean };

/**
 * Tensor `name`, deferred: its shape is checked against config.json's now (before anything is written), its
 * values read when the model is written — checked against fp16's range for an fp16 output (`w.fp16`) — and
 * turned by `transform` into what the graph stores.
 */
function tensor(w: Tensors, name: string, shape: number[], transform: Transform = (v) => v): DeferredWeight {
  const { file, shape: actual } = w.find(name);
  if (actual.join(",") !== shape.join(","))
    throw new UserError(`${file.path}: tensor ${name} has shape [${actual.join(", ")}], config.json implies [${shape.join(", ")}]`);
  const load = async () => {
    const data = await readTensorF32(file, name);
    if (w.fp16)
      for (const v of data)
        if (Math.abs(v) > FP16_MAX && Number.isFinite(v))
          throw new UserError(
            `${file.path}: tensor ${name} holds ${v}, beyond fp16's range (±${FP16_MAX}); import it without --dtype fp16`,
          );
    return transform(data);
  };
  return { length: elementCount(shape), load };
}

/** An nn.Linear weight [out, in] as the graph stores it, [in, out]. */
const linear = (w: Tensors, name: string, out: number, inDim: number) => tensor(w, name, [out, inDim], (v) => transposeRows(v, out, inDim));

/** An RMSNorm weight as the graph multiplies by it: Gemma's norms scale by 1 + w (computed in fp32, as transformers does). */
const norm = (w: Tensors, name: string, H: number, family: Family) =>
  tensor(w, name, [H], family === "gemma" ? (v) => v.map((x) => 1 + x) : undefined);

function layerTensors(w: Tensors, cfg: LlamaConfig, i: number, family: Family): LlamaLayerWeights<DeferredWeight> {
  const p = `model.layers.${i}`;
  const D = headDim(cfg);
  const [H, I, q, kv] = [cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * D, cfg.numKvHeads * D];
  const layer = {
    inputNorm: norm(w, `${p}.input_layernorm.weight`, H, family),
    q: linear(w, `${p}.self_attn.q_proj.weight`, q, H),
    k: linear(w, `${p}.self_attn.k_proj.weight`, kv, H),
    v: linear(w, `${p}.self_attn.v_proj.weight`, kv, H),
    o: linear(w, `${p}.self_attn.o_proj.weight`, H, q),
    postNorm: norm(w, `${p}.post_attention_layernorm.weight`, H, family),
    gate: linear(w, `${p}.mlp.gate_proj.weight`, I, H),
    up: linear(w, `${p}.mlp.up_proj.weight`, I, H),
    down: linear(w, `${p}.mlp.down_proj.weight`, H, I),
  };
  // qwen3 RMS-normalizes each head of q and k (over head_dim) before the rotary embedding.
  if (family === "qwen3")
    return { ...layer, qNorm: tensor(w, `${p}.self_attn.q_norm.weight`, [D]), kNorm: tensor(w, `${p}.self_attn.k_norm.weight`, [D]) };
  if (family !== "qwen2") return layer;
  return {
    ...layer,
    qBias: tensor(w, `${p}.self_attn.q_proj.bias`, [q]),
    kBias: tensor(w, `${p}.self_attn.k_proj.bias`, [kv]),
    vBias: tensor(w, `${p}.self_attn.v_proj.bias`, [kv]),
  };
}

/** Every weight the graph needs, deferred; `w` must stay open until the model is written. */
function weightTensors(w: Tensors, cfg: LlamaConfig, family: Family): LlamaWeights<DeferredWeight> {
  const [H, V] = [cfg.hiddenSize, cfg.vocabSize];
  const layers = Array.from({ length: cfg.numLayers }, (_, i) => layerTensors(w, cfg, i, family));
  return {
    embed: tensor(w, "model.embed_tokens.weight", [V, H]),
    layers,
    norm: norm(w, "model.norm.weight", H, family),
    lmHead: cfg.tieEmbeddings ? undefined : linear(w, "lm_head.weight", V, H),
  };
}

/** Fails unless every id tokenizer.json can produce (its model's vocabulary, its added tokens) is below vocab_size. */
function checkTokenizerVocab(tok: Json, file: string, vocabSize: number): void {
  const vocab = (tok.model as Json | undefined)?.vocab;
  if (!vocab || typeof vocab !== "object") throw new UserError(`${file}: no model.vocab`);
  const added = tok.added_tokens ?? [];
  if (!Array.isArray(added)) throw new UserError(`${file}: added_tokens is not a list`);
  const bad = added.findIndex((t) => !t || typeof t !== "object");
  if (bad >= 0) throw new UserError(`${file}: added_tokens[${bad}] is ${JSON.stringify(added[bad])}, not a token object`);
  // A loop, not Math.max(...ids): a spread of ~150k arguments overflows the stack.
  const ids = [...(Array.isArray(vocab) ? vocab.keys() : Object.values(vocab)), ...(added as { id?: unknown }[]).map((t) => t.id)];
  let size = 0;
  for (const id of ids) if (typeof id === "number") size = Math.max(size, id + 1);
  if (size > vocabSize) throw new UserError(`${file}: the vocabulary has ${size} token ids, more than config.json vocab_size ${vocabSize}`);
}

/**
 * tokenizer_config.json's bytes; with chat_template.jinja's text as its chat_template when it has none (newer
 * transformers save the template in that file, which transformers.js does not read).
 */
async function tokenizerConfig(dir: string, file: { bytes: Uint8Array; value: Json }): Promise<Uint8Array> {
  const jinja = join(dir, CHAT_TEMPLATE_FILE);
  if (file.value.chat_template != null || !(await exists(jinja))) return file.bytes;
  const text = new TextDecoder("utf-8", { fatal: true });
  const bytes = await readRegularFile(jinja, "a chat template", MAX_JSON_BYTES, `the ${formatBytes(MAX_JSON_BYTES)} read`);
  let template: string;
  try {
    template = text.decode(bytes);
  } catch {
    throw new UserError(`${jinja}: not UTF-8 text`);
  }
  return new TextEncoder().encode(JSON.stringify({ ...file.value, chat_template: template }, null, 2) + "\n");
}

/** The tokenizer and generation files, as bytes, the tokenizer checked against config.json's vocab_size. */
async function tokenizerFiles(dir: string, cfg: LlamaConfig): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const f of [...REQUIRED_FILES, ...OPTIONAL_FILES]) {
    const path = join(dir, f);
    if (OPTIONAL_FILES.includes(f) && !(await exists(path))) continue;
    const json = await readJson(path);
    files[f] = f === "tokenizer_config.json" ? await tokenizerConfig(dir, json) : json.bytes;
    if (f === "tokenizer.json") checkTokenizerVocab(json.value, path, cfg.vocabSize);
  }
  return files;
}

export async function importHf(opts: {
  checkpoint: string;
  out: string;
  externalData?: boolean;
  dtype?: WeightType;
}): Promise<{ config: LlamaConfig; modelType: Family }> {
  const { checkpoint: dir, out } = opts;
  if (isInside(await realPathOf(out), await realPathOf(dir)))
    throw new UserError(`${out}: is inside the checkpoint folder ${dir}; the import never writes there: choose another --out`);
  await assertEmptyOrMissingDir(out); // before the weights are read, not after
  const configPath = join(dir, "config.json");
  const { value: json } = await readJson(configPath);
  const family = refuseUnsupported(json, configPath);
  const config = llamaConfig(json, family, configPath);
  const files = await tokenizerFiles(dir, config);
  const configJson: Json = { ...json, max_position_embeddings: config.maxPositions };
  delete configJson.dtype; // transformers 5's name for torch_dtype, which the writer sets
  const w = { ...(await openWeights(dir)), fp16: opts.dtype === "fp16" };
  try {
    await writeOnnxFolder(out, {
      config,
      weights: weightTensors(w, config, family),
      configJson,
      files,
      externalData: opts.externalData,
      dtype: opts.dtype,
      source: `Hugging Face checkpoint ${dir}`,
    });
  } finally {
    await w.close();
  }
  return { config, modelType: family };
}
