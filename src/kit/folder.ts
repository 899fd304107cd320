// Writing a model folder in the Hugging Face / Optimum layout that transformers.js and dlc-prune load:
// config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// onnx/model.onnx (+ onnx/model.onnx_data when the weights are stored as external data).
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { join } from "node:path";
import { buildDirAtomic } from "../util/fs.js";
import { toHfConfigJson, type LlamaConfig } from "./llama-config.js";
import { buildLlamaModel, type LlamaWeights, type WeightType } from "./llama-graph.js";
import { ONNX_FILE } from "../model/folder.js";
import { encodeModel, moveToExternal } from "../model/onnx.js";
import { buildTokenizerFiles, type SentencePieceVocab } from "./tokenizer-json.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";

export const ONNX_DATA_FILE = "model.onnx_data"; // relative to onnx/, as the external data location says
/** Above this many weight bytes the weights go to external data (protobuf cannot exceed 2 GiB). */
const EXTERNAL_DATA_ABOVE = 512 * 1024 * 1024;

/** What every model folder the kit writes is built from: the graph's config and weights, and the other files. */
export interface OnnxFolderSpec {
  config: LlamaConfig;
  weights: LlamaWeights;
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
export interface ModelFolderSpec extends Omit<OnnxFolderSpec, "configJson" | "files"> {
  vocab: SentencePieceVocab;
  chatTemplate: string;
}

function weightBytes(w: LlamaWeights): number {
  let n = w.embed.byteLength + w.norm.byteLength + (w.lmHead?.byteLength ?? 0);
  for (const l of w.layers) for (const t of Object.values(l)) n += (t as Float32Array | undefined)?.byteLength ?? 0;
  return n;
}

async function writeParts(path: string, parts: Uint8Array[]): Promise<void> {
  const out = createWriteStream(path);
  for (const part of parts) if (!out.write(part)) await once(out, "drain");
  out.end();
  await once(out, "finish");
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

/** Builds the graph and writes the folder under a temporary name, renamed to `dir` when complete. */
export async function writeOnnxFolder(dir: string, spec: OnnxFolderSpec): Promise<void> {
  const dtype = spec.dtype ?? "fp32";
  const model = buildLlamaModel(spec.config, spec.weights, `${TOOL_NAME} ${TOOL_VERSION}`, dtype);
  model.docString = spec.source;
  const external = spec.externalData ?? weightBytes(spec.weights) / (dtype === "fp16" ? 2 : 1) > EXTERNAL_DATA_ABOVE;
  await buildDirAtomic(dir, async (tmp) => {
    await mkdir(join(tmp, "onnx"));
    if (external) await writeParts(join(tmp, "onnx", ONNX_DATA_FILE), moveToExternal(model, ONNX_DATA_FILE));
    await writeFile(join(tmp, ONNX_FILE), encodeModel(model));
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
