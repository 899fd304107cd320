// A model folder prepared for scoring: its graph extended to return the log-probability of each target token
// ([batch, seq], never [batch, seq, vocab] logits to JavaScript), and its weights moved to two external-data
// blobs held in memory. The maskable blob is the one working copy that masking zeroes in place; a session
// per level is built from it with onnxruntime's `externalData` override, without re-serializing the model.
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UserError, readingFile } from "../util/errors.js";
import { sha256 } from "../util/fs.js";
import { elementCount } from "../util/math.js";
import { ONNX_FILE, opsetOf, readModelFolder, type ModelConfigJson } from "./folder.js";
import { headNodes, maskableInitializers, type InventoryOptions } from "./inventory.js";
import { DataType, GraphBuilder, encodeModel, externalRef, packExternal, type ModelProto, type TensorProto, type ValueInfoProto } from "./onnx.js";

export const MASKABLE_FILE = "dlc-maskable.bin";
export const FIXED_FILE = "dlc-fixed.bin";
export const TARGETS_INPUT = "dlc_targets";
export const LOGPROBS_OUTPUT = "dlc_token_logprobs";

type Graph = NonNullable<ModelProto["graph"]>;

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

/** The graph inputs the scorer feeds: ids, mask, positions (when the export has them) and an empty past per layer. */
export interface ScorerInputs {
  ids: string;
  mask: string;
  positions?: string;
  past: PastInput[];
}

export interface ScoringModel {
  dir: string;
  onnxPath: string;
  /** sha256 of onnx/model.onnx and of each external data file it uses: the model's identity. */
  sha256: Record<string, string>;
  graph: Uint8Array;
  maskable: MaskableWeight[];
  maskableBlob: Uint8Array;
  fixedBlob: Uint8Array;
  inputs: ScorerInputs;
  /** The model's window (config.json max_position_embeddings; n_positions or n_ctx in GPT-2's family), when it says. */
  maxPositions: number | null;
  /** Token ids the model can take: rows of its embedding / width of its logits / config.json vocab_size, where known. */
  vocabSize: number | null;
}

function tensorType(vi: ValueInfoProto) {
  return vi.type?.value.case === "tensorType" ? vi.type.value.value : undefined;
}

function staticDim(vi: ValueInfoProto, index: number): number | undefined {
  const dim = tensorType(vi)?.shape?.dim[index];
  return dim?.value.case === "dimValue" ? Number(dim.value.value) : undefined;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Moves the maskable weights into one blob (the working copy masking zeroes) and the other large weights
 * into another, so the graph stays small to serialize and under protobuf's 2 GiB whatever the model's size.
 * Hashes the ONNX file and every external data file it reads.
 */
async function moveWeights(graph: Graph, names: string[], onnxPath: string, onnxBytes: Uint8Array) {
  const files = new Map<string, Promise<Uint8Array>>();
  const hashes: Record<string, string> = { [ONNX_FILE]: sha256(onnxBytes) };
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
  /** The bytes of an initializer, wherever they live (raw_data, external file, float_data / int32_data). */
  const bytesOf = async (t: TensorProto): Promise<Uint8Array> => {
    const ref = externalRef(t, onnxPath);
    if (ref) return (await external(ref.location)).subarray(ref.offset, ref.offset + ref.length);
    if (t.rawData.byteLength) return t.rawData;
    if (t.dataType === DataType.FLOAT) return new Uint8Array(Float32Array.from(t.floatData).buffer);
    if (t.dataType === DataType.FLOAT16) return new Uint8Array(Uint16Array.from(t.int32Data).buffer);
    throw new UserError(`${onnxPath}: initializer ${t.name} keeps its values in a field dlc-prune does not read; re-export the model (raw data or external data)`);
  };
  const pack = async (tensors: TensorProto[], location: string) => {
    const { parts, offsets } = packExternal(tensors, await Promise.all(tensors.map(bytesOf)), location);
    return { blob: concatBytes(parts), offsets };
  };
  const byName = new Map(graph.initializer.map((t) => [t.name, t]));
  const maskTensors = names.map((n) => byName.get(n)!);
  const maskShapes = maskTensors.map((t) => ({ dims: t.dims.map(Number), fp32: t.dataType === DataType.FLOAT }));
  const { blob: maskableBlob, offsets } = await pack(maskTensors, MASKABLE_FILE);
  const maskSet = new Set(names);
  const { blob: fixedBlob } = await pack(
    graph.initializer.filter((t) => !maskSet.has(t.name) && (externalRef(t, onnxPath) || t.rawData.byteLength >= 1024)),
    FIXED_FILE,
  );
  const maskable = names.map((name, i): MaskableWeight => {
    const { dims, fp32 } = maskShapes[i]!;
    const at = maskableBlob.byteOffset + offsets[i]!;
    const data = fp32 ? new Float32Array(maskableBlob.buffer, at, elementCount(dims)) : new Uint16Array(maskableBlob.buffer, at, elementCount(dims));
    return { name, dims, data };
  });
  return { maskable, maskableBlob, fixedBlob, sha256: hashes };
}

/** The inputs of a decoder-with-past export, as transformers.js feeds them; anything else is refused. */
function scorerInputs(graph: Graph, config: ModelConfigJson, onnxPath: string): ScorerInputs {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const inputNames = graph.input.map((i) => i.name).filter((n) => !initializers.has(n));
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
  return { ids, mask, positions, past };
}

/**
 * The vocabulary size the folder's parts agree on: config.json's vocab_size, the rows of the token embedding
 * (the Gather over `ids`) and the width of the logits (the output's shape, or the LM head's weight). Parts
 * that disagree do not belong together: a one-line error instead of onnxruntime failing mid-run.
 */
function vocabSizeOf(graph: Graph, ids: string, config: ModelConfigJson, onnxPath: string): number | null {
  const init = new Map(graph.initializer.map((t) => [t.name, t]));
  const gather = graph.node.find((n) => n.opType === "Gather" && n.input[1] === ids && init.get(n.input[0]!)?.dims.length === 2);
  const logits = graph.output.find((o) => o.name === "logits")!;
  const head = headNodes(graph.node, logits.name).map((n) => (n.opType === "MatMul" ? init.get(n.input[1]!) : undefined))[0];
  const sizes: [string, number | undefined][] = [
    ["config.json vocab_size", config.vocab_size],
    ["the token embedding's rows", gather ? Number(init.get(gather.input[0]!)!.dims[0]) : undefined],
    ["the logits' width", staticDim(logits, 2) ?? (head?.dims.length === 2 ? Number(head.dims[1]) : undefined)],
  ];
  const known = sizes.filter((e): e is [string, number] => e[1] !== undefined);
  if (new Set(known.map(([, n]) => n)).size > 1) throw new UserError(`${onnxPath}: vocabulary sizes disagree (${known.map(([what, n]) => `${what} ${n}`).join(", ")}): the folder's files do not belong to one model`);
  return known[0]?.[1] ?? null;
}

/** log p(target) = logit[target] - logsumexp(logits), computed in the graph: the one output the scorer reads. */
function addLogProbHead(model: ModelProto): void {
  const graph = model.graph!;
  const logits = graph.output.find((o) => o.name === "logits")!;
  const g = new GraphBuilder("/dlc");
  const targets = g.input(TARGETS_INPUT, DataType.INT64, ["batch_size", "sequence_length"]);
  const x = tensorType(logits)?.elemType === DataType.FLOAT16 ? g.op1("Cast", [logits.name], { to: DataType.FLOAT }) : logits.name;
  const lastAxis = g.int64([-1]);
  const picked = g.op1("GatherElements", [x, g.op1("Unsqueeze", [targets, lastAxis])], { axis: -1 });
  const lse = opsetOf(model) >= 18 ? g.op1("ReduceLogSumExp", [x, lastAxis], { keepdims: 1 }) : g.op1("ReduceLogSumExp", [x], { axes: [-1], keepdims: 1 });
  g.op1("Squeeze", [g.op1("Sub", [picked, lse]), lastAxis], {}, LOGPROBS_OUTPUT);
  g.output(LOGPROBS_OUTPUT, DataType.FLOAT, ["batch_size", "sequence_length"]);
  graph.node.push(...g.nodes);
  graph.initializer.push(...g.initializers);
  graph.input.push(...g.inputs);
  graph.output = g.outputs;
}

export async function loadScoringModel(modelDir: string, inventory: InventoryOptions): Promise<ScoringModel> {
  const { dir, onnxPath, onnxBytes, model, config } = await readModelFolder(resolve(modelDir));
  const graph = model.graph!;
  if (!graph.output.some((o) => o.name === "logits")) throw new UserError(`${onnxPath}: no "logits" output`);
  const names = maskableInitializers(model, inventory, onnxPath);
  const inputs = scorerInputs(graph, config, onnxPath);
  const vocabSize = vocabSizeOf(graph, inputs.ids, config, onnxPath);
  const weights = await moveWeights(graph, names, onnxPath, onnxBytes);
  // The tokenizer is part of the model's identity too (the token ids are hashed with the scores as well).
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) weights.sha256[f] = sha256(await readFile(join(dir, f)));
  addLogProbHead(model);
  return { dir, onnxPath, ...weights, graph: encodeModel(model), inputs, maxPositions: config.max_position_embeddings ?? config.n_positions ?? config.n_ctx ?? null, vocabSize };
}
