// Writing a model folder in the Hugging Face / Optimum layout that transformers.js and dlc-prune load:
// config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// onnx/model.onnx (+ onnx/model.onnx_data when the weights are stored as external data).
import { mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildDirAtomic } from "../util/fs.js";
import { toHfConfigJson, type LlamaConfig } from "./llama-config.js";
import { buildLlamaModel, type LlamaModel, type LlamaWeights, type WeightData, type WeightType } from "./llama-graph.js";
import { ONNX_FILE } from "../model/folder.js";
import { writeFully } from "../model/files.js";
import { encodeModel, placeExternal, type DeferredBytes } from "../model/onnx.js";
import { buildTokenizerFiles, type SentencePieceVocab } from "./tokenizer-json.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";

export const ONNX_DATA_FILE = "model.onnx_data"; // relative to onnx/, as the external data location says
/** Above this many weight bytes the weights go to external data (protobuf cannot exceed 2 GiB). */
const EXTERNAL_DATA_ABOVE = 512 * 1024 * 1024;
/** Initializers smaller than this stay in the protobuf (Optimum's rule). */
const MIN_EXTERNAL_BYTES = 1024;

/** What every model folder the kit writes is built from: the graph's config and weights, and the other files. */
export interface OnnxFolderSpec {
  config: LlamaConfig;
  /** In memory, or deferred (read as they are written: one tensor at a time is held). */
  weights: LlamaWeights<WeightData>;
  /** config.json's contents; torch_dtype is set from `dtype`. */
  configJson: Record<string, unknown>;
  /** The other files by name (tokenizer, generation settings), written as given. */
  files: Record<string, string | Uint8Array>;
  /** Store the weights in onnx/model.onnx_data; default: only for large models. */
  externalData?: boolean;
  /** Floating-point type of the weights and of the graph's float inputs and outputs. */
  dtype?: WeightType;
  /** Where the model came from, recorded in the ONNX metadata. */
  source: string;
}

/** A folder with tokenizer files built from a SentencePiece vocabulary. */
export interface ModelFolderSpec extends Omit<OnnxFolderSpec, "configJson" | "files" | "weights"> {
  weights: LlamaWeights;
  vocab: SentencePieceVocab;
  chatTemplate: string;
}

/** The number of weight values. */
function weightCount(w: LlamaWeights<WeightData>): number {
  const tensors = [w.embed, w.norm, w.lmHead, ...w.layers.flatMap((l) => Object.values(l) as WeightData[])];
  return tensors.reduce((n, t) => n + (t?.length ?? 0), 0);
}

/** A deferred tensor's bytes, checked against the length the graph was laid out with. */
async function readDeferred(name: string, bytes: DeferredBytes): Promise<Uint8Array<ArrayBuffer>> {
  const data = await bytes.read();
  if (data.byteLength !== bytes.byteLength)
    throw new Error(`initializer ${name}: ${data.byteLength} bytes read, ${bytes.byteLength} laid out`);
  return data;
}

/** Fills every deferred initializer in (a model small enough to be one protobuf). */
async function readInline({ model, deferred }: LlamaModel): Promise<void> {
  for (const t of model.graph!.initializer) {
    const bytes = deferred.get(t.name);
    if (bytes) t.rawData = await readDeferred(t.name, bytes);
  }
}

/**
 * Moves the model's weights to the external data file `path` (named `location` from the graph), writing each
 * deferred tensor as it is read: the import's peak memory is one tensor, not the model. Tensors too small for
 * external data are read inline first, as the in-memory path keeps them. Each write is awaited, so that an
 * error (a full disk) is this call's.
 */
async function writeExternal({ model, deferred }: LlamaModel, path: string, location: string): Promise<void> {
  await readInline({ model, deferred: new Map([...deferred].filter(([, d]) => d.byteLength < MIN_EXTERNAL_BYTES)) });
  const parts = placeExternal(model, location, deferred, MIN_EXTERNAL_BYTES);
  const handle = await open(path, "wx");
  try {
    for (const { name, offset, bytes } of parts) await writeFully(handle, path, await readDeferred(name, bytes), offset);
  } finally {
    await handle.close();
  }
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

/** Builds the graph and writes the folder under a temporary name, renamed to `dir` when complete. */
export async function writeOnnxFolder(dir: string, spec: OnnxFolderSpec): Promise<void> {
  const dtype = spec.dtype ?? "fp32";
  const built = buildLlamaModel(spec.config, spec.weights, `${TOOL_NAME} ${TOOL_VERSION}`, dtype);
  built.model.docString = spec.source;
  const external = spec.externalData ?? weightCount(spec.weights) * (dtype === "fp16" ? 2 : 4) > EXTERNAL_DATA_ABOVE;
  await buildDirAtomic(dir, async (tmp) => {
    await mkdir(join(tmp, "onnx"));
    if (external) await writeExternal(built, join(tmp, "onnx", ONNX_DATA_FILE), ONNX_DATA_FILE);
    else await readInline(built);
    await writeFile(join(tmp, ONNX_FILE), encodeModel(built.model));
    await writeFile(join(tmp, "config.json"), json({ ...spec.configJson, torch_dtype: dtype === "fp16" ? "float16" : "float32" }));
    for (const [name, data] of Object.entries(spec.files)) await writeFile(join(tmp, name), data);
  });
}

export async function writeModelFolder(dir: string, spec: ModelFolderSpec): Promise<void> {
  const { config, vocab, chatTemplate, ...rest } = spec;
  const tok = buildTokenizerFiles(vocab, { chatTemplate, modelMaxLength: config.maxPositions });
  await writeOnnxFolder(dir, {
    ...rest,
    config,
    configJson: toHfConfigJson(config),
    files: {
      "generation_config.json": json({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId, max_length: config.maxPositions }),
      "tokenizer.json": json(tok.tokenizerJson),
      "tokenizer_config.json": json(tok.tokenizerConfig),
      "special_tokens_map.json": json({
        bos_token: vocab.pieces[vocab.bos],
        eos_token: vocab.pieces[vocab.eos],
        unk_token: vocab.pieces[vocab.unk],
      }),
    },
  });
}
