// A model folder in the Hugging Face / Optimum layout, as dlc-prune reads it: config.json, the tokenizer
// files and onnx/model.onnx (its weights inline or in external data files beside it).
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { exists } from "../util/fs.js";
import { decodeModel, type ModelProto } from "./onnx.js";

export const ONNX_FILE = "onnx/model.onnx";
const REQUIRED_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", ONNX_FILE];

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

/** Fails, naming the missing file, unless `dir` is a complete model folder. */
export async function checkModelFolder(dir: string): Promise<void> {
  if (!(await exists(dir))) throw new UserError(`${dir}: model folder not found`);
  if (!(await stat(dir)).isDirectory()) throw new UserError(`${dir}: is a file; model.path names a model folder (${REQUIRED_FILES.join(", ")})`);
  for (const f of REQUIRED_FILES) if (!(await exists(join(dir, f)))) throw new UserError(`${dir}: incomplete model folder: missing ${f}`);
}

/** The folder's ONNX graph (opset 13 or newer) and config.json. */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  await checkModelFolder(dir);
  const onnxPath = join(dir, ONNX_FILE);
  const onnxBytes = await readFile(onnxPath);
  let model: ModelProto;
  try {
    model = decodeModel(onnxBytes);
  } catch (err) {
    throw new UserError(`${onnxPath}: not a readable ONNX model (${(err as Error).message})`);
  }
  if (!model.graph || model.graph.node.length === 0) throw new UserError(`${onnxPath}: not an ONNX model (${onnxBytes.byteLength ? "no graph" : "an empty file"})`);
  const opset = opsetOf(model);
  if (opset < 13) throw new UserError(`${onnxPath}: opset ${opset} is older than 13; re-export with a newer opset`);
  let config: ModelConfigJson;
  try {
    config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as ModelConfigJson;
  } catch (err) {
    throw new UserError(`${join(dir, "config.json")}: not valid JSON (${(err as Error).message})`);
  }
  return { dir, onnxPath, onnxBytes, model, config };
}

/** The default ONNX opset of a model: its scoring head is written in that opset's operators. */
export function opsetOf(model: ModelProto): number {
  return Number(model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0);
}
