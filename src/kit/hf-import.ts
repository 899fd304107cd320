// `dlc-prune model import-hf`: converts a Hugging Face checkpoint folder (config.json, safetensors weights,
// tokenizer files) of a Llama-architecture family into the model folder dlc-prune scores. Whatever the graph
// builder does not implement is refused, naming the file and field, rather than scored approximately.
import { basename, join } from "node:path";
import { MAX_JSON_BYTES } from "../model/folder.js";
import { readRegularFile } from "../model/files.js";
import { openSafetensors, readTensorF32, type SafetensorsFile } from "../model/safetensors.js";
import { UserError } from "../util/errors.js";
import { exists } from "../util/fs.js";
import { isInside, realPathOf } from "../util/paths.js";
import { formatBytes } from "../util/math.js";
import { headDim, llamaConfigProblem, type LlamaConfig } from "./llama-config.js";
import { transposeRows, type LlamaLayerWeights, type LlamaWeights, type WeightType } from "./llama-graph.js";
import { writeOnnxFolder } from "./folder.js";

export const HF_MODEL_TYPES = ["llama", "mistral", "qwen2"] as const;
type Family = (typeof HF_MODEL_TYPES)[number];
const SINGLE = "model.safetensors";
const INDEX = "model.safetensors.index.json";
/** Copied verbatim: the tokenizer, its chat template and the generation settings. */
const REQUIRED_FILES = ["tokenizer.json", "tokenizer_config.json"];
const OPTIONAL_FILES = ["special_tokens_map.json", "generation_config.json"];

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

/** config.json's `key`, a number (positive unless `min` says); `fallback` when absent. */
function num(j: Json, key: string, file: string, fallback?: number, min = Number.MIN_VALUE): number {
  const v = j[key] ?? fallback;
  if (typeof v !== "number" || !(v >= min)) throw new UserError(`${file}: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Fails, naming the field, on anything the graph builder does not implement. */
function refuseUnsupported(j: Json, file: string): Family {
  const type = j.model_type;
  if (!HF_MODEL_TYPES.includes(type as Family))
    throw new UserError(`${file}: model_type ${JSON.stringify(type)} is not supported (${HF_MODEL_TYPES.join(", ")})`);
  if (j.quantization_config != null)
    throw new UserError(`${file}: quantization_config: quantized checkpoints are not supported; import the unquantized weights`);
  if ((j.hidden_act ?? "silu") !== "silu")
    throw new UserError(`${file}: hidden_act ${JSON.stringify(j.hidden_act)} is not supported (silu)`);
  for (const key of ["attention_bias", "mlp_bias"])
    if (type === "llama" && j[key] === true) throw new UserError(`${file}: ${key} true is not supported for llama`);
  return type as Family;
}

const LLAMA3_KEYS = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"];

/** The rotary base and scaling, from rope_parameters (transformers 5) or rope_theta and rope_scaling: unscaled or Llama 3's. */
function rope(j: Json, file: string): Pick<LlamaConfig, "ropeTheta" | "ropeScaling"> {
  const params = j.rope_parameters as Json | null | undefined;
  const field = params != null ? "rope_parameters" : "rope_scaling";
  const p = (params ?? j.rope_scaling ?? { rope_type: "default" }) as Json;
  const ropeTheta = params != null ? num(p, "rope_theta", `${file}: rope_parameters`) : num(j, "rope_theta", file, 10000);
  const type = p.rope_type ?? p.type;
  const allowed = ["rope_type", "type", "rope_theta", ...(type === "llama3" ? LLAMA3_KEYS : [])];
  if ((type !== "default" && type !== "llama3") || Object.keys(p).some((k) => !allowed.includes(k)))
    throw new UserError(`${file}: ${field} ${JSON.stringify(p)} is not supported (unscaled, or rope_type llama3)`);
  if (type === "default") return { ropeTheta };
  const [factor, lowFreqFactor, highFreqFactor, originalMaxPositions] = LLAMA3_KEYS.map((k) => num(p, k, `${file}: ${field}`));
  return {
    ropeTheta,
    ropeScaling: {
      factor: factor!,
      lowFreqFactor: lowFreqFactor!,
      highFreqFactor: highFreqFactor!,
      originalMaxPositions: originalMaxPositions!,
    },
  };
}

/** The attention window when sliding-window attention is on, else undefined. */
function slidingWindow(j: Json, family: Family, file: string): number | undefined {
  const on =
    family === "mistral"
      ? j.sliding_window != null
      : family === "qwen2" &&
        (j.use_sliding_window === true || (Array.isArray(j.layer_types) && j.layer_types.includes("sliding_attention")));
  return on ? num(j, "sliding_window", file) : undefined;
}

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
    vocabSize: num(j, "vocab_size", file),
    maxPositions: Math.min(num(j, "max_position_embeddings", file), window ?? Infinity),
    rmsNormEps: num(j, "rms_norm_eps", file),
    ...rope(j, file),
    tieEmbeddings: j.tie_word_embeddings === true,
    // Only the kit's own config.json and generation_config.json use these; the import copies the checkpoint's.
    bosTokenId: Number(firstId(j.bos_token_id) ?? -1),
    eosTokenId: Number(firstId(j.eos_token_id) ?? -1),
  };
  const problem = llamaConfigProblem(config);
  if (problem) throw new UserError(`${file}: ${problem}`);
  if (j.head_dim != null && j.head_dim !== headDim(config))
    throw new UserError(
      `${file}: head_dim ${JSON.stringify(j.head_dim)} is not hidden_size / num_attention_heads (${headDim(config)}): not supported`,
    );
  return config;
}

/** Where each tensor is: the index's weight_map, or every tensor of model.safetensors. */
interface Weights {
  find(name: string): { file: SafetensorsFile; shape: number[] };
  close(): Promise<void>;
}

async function openWeights(dir: string): Promise<Weights> {
  const indexPath = join(dir, INDEX);
  if (await exists(indexPath)) return openSharded(indexPath, dir);
  if (!(await exists(join(dir, SINGLE)))) throw new UserError(`${dir}: no weights: neither ${SINGLE} nor ${INDEX} (safetensors only)`);
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

/** Reads tensor `name`, checking its shape against config.json's. */
async function readTensor(w: Weights, name: string, shape: number[]): Promise<Float32Array> {
  const { file, shape: actual } = w.find(name);
  if (actual.join(",") !== shape.join(","))
    throw new UserError(`${file.path}: tensor ${name} has shape [${actual.join(", ")}], config.json implies [${shape.join(", ")}]`);
  return readTensorF32(file, name);
}

/** An nn.Linear weight [out, in] as the graph stores it, [in, out]. */
async function readLinear(w: Weights, name: string, out: number, inDim: number): Promise<Float32Array> {
  return transposeRows(await readTensor(w, name, [out, inDim]), out, inDim);
}

async function readLayer(w: Weights, cfg: LlamaConfig, i: number, bias: boolean): Promise<LlamaLayerWeights> {
  const p = `model.layers.${i}`;
  const [H, I, q, kv] = [cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * headDim(cfg), cfg.numKvHeads * headDim(cfg)];
  const layer: LlamaLayerWeights = {
    inputNorm: await readTensor(w, `${p}.input_layernorm.weight`, [H]),
    q: await readLinear(w, `${p}.self_attn.q_proj.weight`, q, H),
    k: await readLinear(w, `${p}.self_attn.k_proj.weight`, kv, H),
    v: await readLinear(w, `${p}.self_attn.v_proj.weight`, kv, H),
    o: await readLinear(w, `${p}.self_attn.o_proj.weight`, H, q),
    postNorm: await readTensor(w, `${p}.post_attention_layernorm.weight`, [H]),
    gate: await readLinear(w, `${p}.mlp.gate_proj.weight`, I, H),
    up: await readLinear(w, `${p}.mlp.up_proj.weight`, I, H),
    down: await readLinear(w, `${p}.mlp.down_proj.weight`, H, I),
  };
  if (!bias) return layer;
  return {
    ...layer,
    qBias: await readTensor(w, `${p}.self_attn.q_proj.bias`, [q]),
    kBias: await readTensor(w, `${p}.self_attn.k_proj.bias`, [kv]),
    vBias: await readTensor(w, `${p}.self_attn.v_proj.bias`, [kv]),
  };
}

async function readWeights(dir: string, cfg: LlamaConfig, family: Family): Promise<LlamaWeights> {
  const w = await openWeights(dir);
  try {
    const [H, V] = [cfg.hiddenSize, cfg.vocabSize];
    const layers: LlamaLayerWeights[] = [];
    for (let i = 0; i < cfg.numLayers; i++) layers.push(await readLayer(w, cfg, i, family === "qwen2"));
    return {
      embed: await readTensor(w, "model.embed_tokens.weight", [V, H]),
      layers,
      norm: await readTensor(w, "model.norm.weight", [H]),
      lmHead: cfg.tieEmbeddings ? undefined : await readLinear(w, "lm_head.weight", V, H),
    };
  } finally {
    await w.close();
  }
}

/** Fails unless every id tokenizer.json can produce (its model's vocabulary, its added tokens) is below vocab_size. */
function checkTokenizerVocab(tok: Json, file: string, vocabSize: number): void {
  const vocab = (tok.model as Json | undefined)?.vocab;
  if (!vocab || typeof vocab !== "object") throw new UserError(`${file}: no model.vocab`);
  // A loop, not Math.max(...ids): a spread of ~150k arguments overflows the stack.
  const ids = [
    ...(Array.isArray(vocab) ? vocab.keys() : Object.values(vocab)),
    ...((tok.added_tokens ?? []) as { id?: unknown }[]).map((t) => t.id),
  ];
  let size = 0;
  for (const id of ids) if (typeof id === "number") size = Math.max(size, id + 1);
  if (size > vocabSize) throw new UserError(`${file}: the vocabulary has ${size} token ids, more than config.json vocab_size ${vocabSize}`);
}

/** The tokenizer and generation files, as bytes, the tokenizer checked against config.json's vocab_size. */
async function tokenizerFiles(dir: string, cfg: LlamaConfig): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const f of [...REQUIRED_FILES, ...OPTIONAL_FILES]) {
    const path = join(dir, f);
    if (OPTIONAL_FILES.includes(f) && !(await exists(path))) continue;
    const { bytes, value } = await readJson(path);
    files[f] = bytes;
    if (f === "tokenizer.json") checkTokenizerVocab(value, path, cfg.vocabSize);
  }
  return files;
}

export async function importHf(opts: {
  checkpoint: string;
  out: string;
  externalData?: boolean;
  dtype?: WeightType;
}): Promise<LlamaConfig> {
  const { checkpoint: dir, out } = opts;
  if (isInside(await realPathOf(out), await realPathOf(dir)))
    throw new UserError(`${out}: is inside the checkpoint folder ${dir}; the import never writes there: choose another --out`);
  const configPath = join(dir, "config.json");
  const { value: json } = await readJson(configPath);
  const family = refuseUnsupported(json, configPath);
  const config = llamaConfig(json, family, configPath);
  const files = await tokenizerFiles(dir, config);
  const weights = await readWeights(dir, config, family);
  const configJson: Json = { ...json, max_position_embeddings: config.maxPositions };
  delete configJson.dtype; // transformers 5's name for torch_dtype, which the writer sets
  await writeOnnxFolder(out, {
    config,
    weights,
    configJson,
    files,
    externalData: opts.externalData,
    dtype: opts.dtype,
    source: `Hugging Face checkpoint ${dir}`,
  });
  return config;
}
