// A model folder prepared for scoring: its graph extended to return the log-probability of each target token
// ([batch, seq], never [batch, seq, vocab] logits to JavaScript), and its weights moved to two external-data
// blobs held in memory. The maskable blob is the one working copy that masking zeroes in place; a session
// per level is built from it with onnxruntime's `externalData` override, without re-serializing the model.
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UserError, readingFile } from "../util/errors.js";
import { exists, sha256 } from "../util/fs.js";
import { ONNX_FILE } from "./folder.js";
import { headNodes, maskableInitializers, type InventoryOptions } from "./inventory.js";
import { DataType, GraphBuilder, bytesPerElement, decodeModel, encodeModel, externalRef, setExternal, type ModelProto, type TensorProto, type ValueInfoProto } from "./onnx.js";

export const MASKABLE_FILE = "dlc-maskable.bin";
export const FIXED_FILE = "dlc-fixed.bin";
export const TARGETS_INPUT = "dlc_targets";
export const LOGPROBS_OUTPUT = "dlc_token_logprobs";
const REQUIRED_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", ONNX_FILE];

export interface MaskableWeight {
  name: string;
  dims: number[];
  /** A view into `maskableBlob`: fp32 values or fp16 bit patterns. */
  data: Float32Array | Uint16Array;
}

export interface PastInput {
  name: string;
  /** [kv heads, head dim] */
  dims: [number, number];
  type: "float32" | "float16";
}

export interface ScoringModel {
  dir: string;
  /** sha256 of onnx/model.onnx and of each external data file it uses: the model's identity. */
  sha256: Record<string, string>;
  graph: Uint8Array;
  maskable: MaskableWeight[];
  maskableBlob: Uint8Array;
  fixedBlob: Uint8Array;
  inputs: { ids: string; mask: string; positions?: string; past: PastInput[] };
  /** The model's max positions (config.json max_position_embeddings), when it says. */
  maxPositions: number | null;
  /** Token ids the model can take: rows of its embedding / width of its logits / config.json vocab_size, where known. */
  vocabSize: number | null;
}

/**
 * The vocabulary size the folder's parts agree on: config.json's vocab_size, the rows of the token embedding
 * (the Gather over `ids`) and the width of the logits (the output's shape, or the LM head's weight). Parts
 * that disagree do not belong together: a one-line error instead of onnxruntime failing mid-run.
 */
function vocabSizeOf(graph: NonNullable<ModelProto["graph"]>, ids: string, config: Record<string, unknown>, onnxPath: string): number | null {
  const init = new Map(graph.initializer.map((t) => [t.name, t]));
  const gather = graph.node.find((n) => n.opType === "Gather" && n.input[1] === ids && init.get(n.input[0]!)?.dims.length === 2);
  const logits = graph.output.find((o) => o.name === "logits")!;
  const head = headNodes(graph.node, logits.name).map((n) => (n.opType === "MatMul" ? init.get(n.input[1]!) : undefined))[0];
  const sizes: [string, number | undefined][] = [
    ["config.json vocab_size", typeof config.vocab_size === "number" ? config.vocab_size : undefined],
    ["the token embedding's rows", gather ? Number(init.get(gather.input[0]!)!.dims[0]) : undefined],
    ["the logits' width", staticDim(logits, 2) ?? (head?.dims.length === 2 ? Number(head.dims[1]) : undefined)],
  ];
  const known = sizes.filter((e): e is [string, number] => e[1] !== undefined);
  if (new Set(known.map(([, n]) => n)).size > 1) throw new UserError(`${onnxPath}: vocabulary sizes disagree (${known.map(([what, n]) => `${what} ${n}`).join(", ")}): the folder's files do not belong to one model`);
  return known[0]?.[1] ?? null;
}

/** Fails, naming the missing file, unless `dir` is a complete model folder. */
export async function checkModelFolder(dir: string): Promise<void> {
  if (!(await exists(dir))) throw new UserError(`${dir}: model folder not found`);
  if (!(await stat(dir)).isDirectory()) throw new UserError(`${dir}: is a file; model.path names a model folder (${REQUIRED_FILES.join(", ")})`);
  for (const f of REQUIRED_FILES) if (!(await exists(join(dir, f)))) throw new UserError(`${dir}: incomplete model folder: missing ${f}`);
}

/** The bytes of an initializer, wherever they live (raw_data, external file, float_data / int32_data). */
function tensorBytes(t: TensorProto, external: (location: string) => Promise<Uint8Array>): Promise<Uint8Array> | Uint8Array {
  const ref = externalRef(t);
  if (ref) return external(ref.location).then((buf) => buf.subarray(ref.offset, ref.offset + ref.length));
  if (t.rawData.byteLength) return t.rawData;
  if (t.dataType === DataType.FLOAT) return new Uint8Array(Float32Array.from(t.floatData).buffer);
  if (t.dataType === DataType.FLOAT16) return new Uint8Array(Uint16Array.from(t.int32Data).buffer);
  throw new Error(`initializer ${t.name}: unsupported storage`);
}

/** Packs initializers into one 64-byte-aligned blob and points them at `location`. */
async function pack(tensors: TensorProto[], location: string, bytesOf: (t: TensorProto) => Promise<Uint8Array> | Uint8Array): Promise<{ blob: Uint8Array; offsets: number[] }> {
  const offsets: number[] = [];
  let size = 0;
  for (const t of tensors) {
    size = Math.ceil(size / 64) * 64;
    offsets.push(size);
    size += t.dims.reduce((a, d) => a * Number(d), 1) * bytesPerElement(t.dataType);
  }
  const blob = new Uint8Array(size);
  for (const [i, t] of tensors.entries()) {
    const bytes = await bytesOf(t);
    blob.set(bytes, offsets[i]);
    setExternal(t, { location, offset: offsets[i]!, length: bytes.byteLength });
  }
  return { blob, offsets };
}

function tensorType(vi: ValueInfoProto) {
  return vi.type?.value.case === "tensorType" ? vi.type.value.value : undefined;
}

function staticDim(vi: ValueInfoProto, index: number): number | undefined {
  const dim = tensorType(vi)?.shape?.dim[index];
  return dim?.value.case === "dimValue" ? Number(dim.value.value) : undefined;
}

export async function loadScoringModel(modelDir: string, inventory: InventoryOptions): Promise<ScoringModel> {
  const dir = resolve(modelDir);
  await checkModelFolder(dir);
  const onnxPath = join(dir, ONNX_FILE);
  const bytes = await readFile(onnxPath);
  let model;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new UserError(`${onnxPath}: not a readable ONNX model (${(err as Error).message})`);
  }
  let config: Record<string, number | undefined>;
  try {
    config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, number | undefined>;
  } catch (err) {
    throw new UserError(`${join(dir, "config.json")}: not valid JSON (${(err as Error).message})`);
  }
  const graph = model.graph;
  if (!graph || graph.node.length === 0) throw new UserError(`${onnxPath}: not an ONNX model (${bytes.byteLength ? "no graph" : "an empty file"})`);
  const opset = Number(model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0);
  if (opset < 13) throw new UserError(`${onnxPath}: opset ${opset} is older than 13; re-export with a newer opset`);

  const names = maskableInitializers(model, inventory, onnxPath);
  const files = new Map<string, Promise<Uint8Array>>();
  const hashes: Record<string, string> = { [ONNX_FILE]: sha256(bytes) };
  const external = (location: string) => {
    if (!files.has(location)) {
      const path = join(dirname(onnxPath), location);
      files.set(
        location,
        readingFile(path, () => readFile(path)).then((data) => {
          hashes[`onnx/${location}`] = sha256(data);
          return data;
        }),
      );
    }
    return files.get(location)!;
  };
  const byName = new Map(graph.initializer.map((t) => [t.name, t]));
  const maskTensors = names.map((n) => byName.get(n)!);
  const maskDims = maskTensors.map((t) => t.dims.map(Number));
  const maskTypes = maskTensors.map((t) => t.dataType);
  const { blob: maskableBlob, offsets } = await pack(maskTensors, MASKABLE_FILE, (t) => tensorBytes(t, external));
  // The other large weights go outside the protobuf too: the graph stays small to serialize, and under
  // protobuf's 2 GiB whatever the model's size.
  const maskSet = new Set(names);
  const fixedTensors = graph.initializer.filter((t) => !maskSet.has(t.name) && (externalRef(t) || t.rawData.byteLength >= 1024));
  const { blob: fixedBlob } = await pack(fixedTensors, FIXED_FILE, (t) => tensorBytes(t, external));

  const maskable = names.map((name, i): MaskableWeight => {
    const count = maskDims[i]!.reduce((a, b) => a * b, 1);
    const data =
      maskTypes[i] === DataType.FLOAT
        ? new Float32Array(maskableBlob.buffer, maskableBlob.byteOffset + offsets[i]!, count)
        : new Uint16Array(maskableBlob.buffer, maskableBlob.byteOffset + offsets[i]!, count);
    return { name, dims: maskDims[i]!, data };
  });

  // Inputs the scorer feeds: ids, mask, positions and an empty past for each layer.
  const inputNames = graph.input.map((i) => i.name).filter((n) => !byName.has(n));
  const ids = inputNames.find((n) => n === "input_ids");
  const mask = inputNames.find((n) => n === "attention_mask");
  if (!ids || !mask) throw new UserError(`${onnxPath}: expected inputs input_ids and attention_mask, found ${inputNames.join(", ")}`);
  const positions = inputNames.find((n) => n === "position_ids");
  const past: PastInput[] = [];
  for (const vi of graph.input.filter((i) => i.name.startsWith("past_key_values."))) {
    const kvHeads = staticDim(vi, 1) ?? config.num_key_value_heads ?? config.num_attention_heads;
    const headDim = staticDim(vi, 3) ?? config.head_dim ?? (config.hidden_size && config.num_attention_heads ? config.hidden_size / config.num_attention_heads : undefined);
    if (!kvHeads || !headDim) throw new UserError(`${onnxPath}: cannot tell the shape of ${vi.name}`);
    past.push({ name: vi.name, dims: [kvHeads, headDim], type: tensorType(vi)?.elemType === DataType.FLOAT16 ? "float16" : "float32" });
  }
  const unknown = inputNames.filter((n) => n !== ids && n !== mask && n !== positions && !n.startsWith("past_key_values."));
  if (unknown.length) throw new UserError(`${onnxPath}: unsupported model inputs ${unknown.join(", ")} (expected a decoder-with-past export)`);

  // log p(target) = logit[target] - logsumexp(logits), computed in the graph.
  const logits = graph.output.find((o) => o.name === "logits");
  if (!logits) throw new UserError(`${onnxPath}: no "logits" output`);
  const vocabSize = vocabSizeOf(graph, ids, config, onnxPath);
  const g = new GraphBuilder("/dlc");
  const targets = g.input(TARGETS_INPUT, DataType.INT64, ["batch_size", "sequence_length"]);
  const x = tensorType(logits)?.elemType === DataType.FLOAT16 ? g.op1("Cast", [logits.name], { to: DataType.FLOAT }) : logits.name;
  const lastAxis = g.int64([-1]);
  const picked = g.op1("GatherElements", [x, g.op1("Unsqueeze", [targets, lastAxis])], { axis: -1 });
  const lse = opset >= 18 ? g.op1("ReduceLogSumExp", [x, lastAxis], { keepdims: 1 }) : g.op1("ReduceLogSumExp", [x], { axes: [-1], keepdims: 1 });
  g.op1("Squeeze", [g.op1("Sub", [picked, lse]), lastAxis], {}, LOGPROBS_OUTPUT);
  g.output(LOGPROBS_OUTPUT, DataType.FLOAT, ["batch_size", "sequence_length"]);
  graph.node.push(...g.nodes);
  graph.initializer.push(...g.initializers);
  graph.input.push(...g.inputs);
  graph.output = g.outputs;

  return {
    dir,
    sha256: hashes,
    graph: encodeModel(model),
    maskable,
    maskableBlob,
    fixedBlob,
    inputs: { ids, mask, positions, past },
    maxPositions: config.max_position_embeddings ?? null,
    vocabSize,
  };
}
