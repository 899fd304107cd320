// A model folder in the Hugging Face / Optimum layout, as dlc-prune reads it: config.json, the tokenizer
// files and onnx/model.onnx (its weights inline or in external data files beside it). Every file is read
// only when it is a regular file of a bounded size (files.ts).
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { exists } from "../util/fs.js";
import { formatBytes } from "../util/math.js";
import { readRegularFile, regularFileSize } from "./files.js";
import { decodeModel, type ModelProto } from "./onnx.js";

export const ONNX_FILE = "onnx/model.onnx";
const JSON_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json"];
const REQUIRED_FILES = [...JSON_FILES, ONNX_FILE];

/** The largest config.json, tokenizer.json or tokenizer_config.json read (the largest tokenizers are tens of MiB). */
export const MAX_JSON_BYTES = 256 * 2 ** 20;
/** Protobuf's limit: an ONNX file holds at most 2 GiB; larger weights go to external data. */
export const MAX_ONNX_BYTES = 2 ** 31 - 1;

/** config.json's numbers the scorer reads (window, vocabulary, attention shape). */
export type ModelConfigJson = Record<string, number | undefined>;

export interface ModelFolder {
  dir: string;
  onnxPath: string;
  /** onnx/model.onnx as read, and decoded. */
  onnxBytes: Uint8Array;
  model: ModelProto;
  config: ModelConfigJson;
}

/**
 * Fails, naming the file, unless `dir` is a complete model folder: each file present, a regular file (not a
 * device, FIFO or folder, also behind a symlink), the JSON files at most MAX_JSON_BYTES.
 */
export async function checkModelFolder(dir: string): Promise<void> {
  if (!(await exists(dir))) throw new UserError(`${dir}: model folder not found`);
  if (!(await stat(dir)).isDirectory())
    throw new UserError(`${dir}: is a file; model.path names a model folder (${REQUIRED_FILES.join(", ")})`);
  for (const f of REQUIRED_FILES)
    if (!(await exists(join(dir, f))))
      throw new UserError(
        `${dir}: incomplete model folder: missing ${f}${f === ONNX_FILE ? " (or, for a Hugging Face checkpoint, model.safetensors or model.safetensors.index.json)" : ""}`,
      );
  for (const f of REQUIRED_FILES) {
    const size = await regularFileSize(join(dir, f), `a model folder's ${f}`);
    if (JSON_FILES.includes(f) && size > MAX_JSON_BYTES)
      throw new UserError(
        `${join(dir, f)}: ${formatBytes(size)} is more than the ${formatBytes(MAX_JSON_BYTES)} a model folder's ${f} may have`,
      );
  }
}

/**
 * True when `dir` is a Hugging Face checkpoint rather than an ONNX model folder: config.json and safetensors
 * weights (one file, or an index of shards), and no onnx/model.onnx.
 */
export async function isCheckpointFolder(dir: string): Promise<boolean> {
  if (await exists(join(dir, ONNX_FILE))) return false;
  if (!(await exists(join(dir, "config.json")))) return false;
  return (await exists(join(dir, "model.safetensors"))) || (await exists(join(dir, "model.safetensors.index.json")));
}

/** A model folder's JSON file (config.json, tokenizer.json...), as bytes, checked as checkModelFolder does. */
export function readModelJson(dir: string, file: string): Promise<Uint8Array> {
  return readRegularFile(
    join(dir, file),
    `a model folder's ${file}`,
    MAX_JSON_BYTES,
    `the ${formatBytes(MAX_JSON_BYTES)} a model folder's ${file} may have`,
  );
}

/** The folder's ONNX graph (opset 13 or newer) and config.json. */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  await checkModelFolder(dir);
  const onnxPath = join(dir, ONNX_FILE);
  const onnxBytes = await readRegularFile(
    onnxPath,
    "onnx/model.onnx",
    MAX_ONNX_BYTES,
    "an ONNX file can hold (2 GiB, protobuf's limit): export the weights as external data (onnx/model.onnx_data)",
  );
  let model: ModelProto;
  try {
    model = decodeModel(onnxBytes);
  } catch (err) {
    throw new UserError(`${onnxPath}: not a readable ONNX model (${(err as Error).message})`);
  }
  if (!model.graph || model.graph.node.length === 0)
    throw new UserError(`${onnxPath}: not an ONNX model (${onnxBytes.byteLength ? "no graph" : "an empty file"})`);
  const opset = opsetOf(model);
  if (opset < 13) throw new UserError(`${onnxPath}: opset ${opset} is older than 13; re-export with a newer opset`);
  let config: ModelConfigJson;
  const configBytes = await readModelJson(dir, "config.json");
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes)) as ModelConfigJson;
  } catch (err) {
    throw new UserError(`${join(dir, "config.json")}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config))
    throw new UserError(`${join(dir, "config.json")}: not a JSON object (the model's settings: vocab_size, max_position_embeddings...)`);
  return { dir, onnxPath, onnxBytes, model, config };
}

/** The default ONNX opset of a model: its scoring head is written in that opset's operators. */
export function opsetOf(model: ModelProto): number {
  return Number(model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0);
}
