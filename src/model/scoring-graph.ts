// A model folder prepared for scoring: its graph extended to return the log-probability of each target token
// ([batch, seq], never [batch, seq, vocab] logits to JavaScript), and its large weights moved to buffers held
// in memory, one per tensor (so no size limit of one typed array applies). The maskable weights' buffers are
// the one working copy that masking zeroes in place. The graph comes in two forms: with the maskable weights
// as graph inputs, fed from that copy on every run (one session serves every level), and with them as
// initializers handed over by onnxruntime's `externalData` override (a session per level).
import { createHash } from "node:crypto";
import { realpath, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UserError, readingFile } from "../util/errors.js";
import { sha256 } from "../util/fs.js";
import { elementCount } from "../util/math.js";
import { isInside } from "../util/paths.js";
import { formatBytes } from "../util/math.js";
import { openRegular, readFully } from "./files.js";
import { ONNX_FILE, opsetOf, readModelFolder, readModelJson, type ModelConfigJson, type ModelFolder } from "./folder.js";
import { FLOAT_TYPES, headNodes, maskableInitializers, type InventoryOptions } from "./inventory.js";
import {
  DataType,
  GraphBuilder,
  checkInlineData,
  declaredBytes,
  encodeModel,
  externalRef,
  isExternal,
  setExternal,
  valueInfo,
  type ExternalDataRef,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx.js";

export const TARGETS_INPUT = "dlc_targets";
/** Flat indices (batch row × sequence length + position) of the positions whose next token is scored. */
export const POSITIONS_INPUT = "dlc_scored_positions";
export const LOGPROBS_OUTPUT = "dlc_token_logprobs";

type Graph = NonNullable<ModelProto["graph"]>;

/** A weight's own buffer, under the external data location the graph names it by. */
export interface ExternalBuffer {
  path: string;
  data: Uint8Array;
}

/** A float weight: fp32 values or fp16 bit patterns over its own buffer. */
export interface Weight {
  name: string;
  dims: number[];
  /** fp32 values or fp16 bit patterns, over `buffer.data`. */
  data: Float32Array | Uint16Array;
  buffer: ExternalBuffer;
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
  /** The graph, with the maskable and unmasked weights as graph inputs or as initializers in external data. */
  graphs: { weightsAsInputs: Uint8Array; weightsAsInitializers: Uint8Array };
  maskable: Weight[];
  /** The other large float weights (the embedding, an untied LM head): graph inputs on the CPU like `maskable`, never masked. */
  unmasked: Weight[];
  /** The other large initializers, in external data in both graphs. */
  fixed: ExternalBuffer[];
  /** Reads the unmasked maskable weights again into their buffers, from the model's files (unchanged, by their sha256). */
  restoreMaskable: () => Promise<void>;
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

/** The folders external data may lie in: the model folder and the folder onnx/model.onnx really is in, as real paths. */
interface Bounds {
  dir: string;
  onnxPath: string;
  realDir: string;
  realOnnxDir: string;
}

/**
 * An external data location, opened for reading. Refused unless it is relative and its real path (symlinks
 * followed) lies inside the model folder, or beside the file onnx/model.onnx really is (a Hugging Face cache
 * links both into one blobs/ folder), as onnxruntime allows, and is a regular file. A shared model folder must
 * not make dlc-prune read, hash or record any other file.
 */
async function openExternal(
  location: string,
  t: Pick<TensorProto, "name">,
  b: Bounds,
): Promise<{ path: string; handle: FileHandle; size: number }> {
  if (isAbsolute(location))
    throw new UserError(
      `${b.onnxPath}: initializer ${t.name}: external data location ${JSON.stringify(location)} is an absolute path; external data is named relative to onnx/ and lies in the model folder`,
    );
  const path = join(dirname(b.onnxPath), location);
  const checkInside = (real: string) => {
    if (!isInside(real, b.realDir) && !isInside(real, b.realOnnxDir))
      throw new UserError(
        `${b.onnxPath}: initializer ${t.name}: external data location ${JSON.stringify(location)} leads outside the model folder ${b.dir} (to ${real}); dlc-prune reads no file outside it: put the data in the folder`,
      );
  };
  checkInside(await readingFile(path, () => realpath(path)));
  const file = await openRegular(path, "external data");
  // What was opened, where Linux's /proc says: a link swapped between the check and the open is caught too.
  const opened = await realpath(`/proc/self/fd/${file.handle.fd}`).catch(() => undefined);
  try {
    if (opened !== undefined) checkInside(opened);
  } catch (err) {
    await file.handle.close();
    throw err;
  }
  return { path, ...file };
}

/** Tensors the graph holds other than its initializers (node attributes, subgraphs, sparse initializers), with where they are. */
function* otherTensors(graph: Graph, top = true): Generator<[TensorProto, string]> {
  if (!top) for (const t of graph.initializer) yield [t, `initializer ${t.name} of subgraph ${graph.name}`];
  for (const s of graph.sparseInitializer) for (const t of [s.values, s.indices]) if (t) yield [t, `sparse initializer ${t.name}`];
  for (const n of graph.node)
    for (const a of n.attribute) {
      const where = `node ${n.name} attribute ${a.name}`;
      for (const t of [
        a.t,
        ...a.tensors,
        a.sparseTensor?.values,
        a.sparseTensor?.indices,
        ...a.sparseTensors.flatMap((x) => [x.values, x.indices]),
      ])
        if (t) yield [t, where];
      for (const g of [a.g, ...a.graphs]) if (g) yield* otherTensors(g, false);
    }
}

/** The values of an initializer stored in the model file (raw_data, or float_data / int32_data). */
function inlineBytes(t: TensorProto, onnxPath: string): Uint8Array {
  if (t.rawData.byteLength) return t.rawData;
  if (t.dataType === DataType.FLOAT) return new Uint8Array(Float32Array.from(t.floatData).buffer);
  if (t.dataType === DataType.FLOAT16) return new Uint8Array(Uint16Array.from(t.int32Data).buffer);
  throw new UserError(
    `${onnxPath}: initializer ${t.name} keeps its values in a field dlc-prune does not read; re-export the model (raw data or external data)`,
  );
}

const READ_CHUNK = 16 * 2 ** 20;

type OpenFile = { path: string; handle: FileHandle; size: number };
/** Where a tensor's bytes are: a range of an external data file, or in the model file itself. */
type Source = { ref: ExternalDataRef } | { bytes: Uint8Array };
/** A range of an external data file to copy into a tensor's buffer. */
type Target = { ref: ExternalDataRef; blob: Uint8Array; tensor: string };

const sourceLength = (s: Source) => ("ref" in s ? s.ref.length : s.bytes.byteLength);

/**
 * Moves the maskable weights and the other large weights into buffers of their own, so the graph stays small
 * to serialize and under protobuf's 2 GiB whatever the model's size. Every size is checked against the bytes
 * present before anything is allocated; each external data file is read once, in chunks (no 2 GiB limit of
 * fs.readFile, no second copy of the file), hashed as it is read, and its ranges copied straight into the
 * buffers. Hashes the ONNX file and every external data file it reads.
 */
async function moveWeights(graph: Graph, names: string[], folder: ModelFolder) {
  const { dir, onnxPath, onnxBytes } = folder;
  checkWhereDataLies(graph, onnxPath);
  const byName = new Map(graph.initializer.map((t) => [t.name, t]));
  const maskSet = new Set(names);
  const maskTensors = names.map((n) => byName.get(n)!);
  const large = graph.initializer.filter((t) => !maskSet.has(t.name) && (externalRef(t, onnxPath) || t.rawData.byteLength >= 1024));
  // The large float weights (the embedding, an untied LM head) are fed like the maskable ones on the CPU.
  const isFedFloat = (t: TensorProto) => FLOAT_TYPES.has(t.dataType) && (declaredBytes(t, onnxPath) ?? 0) >= FED_BYTES;
  const otherTensors = large.filter(isFedFloat);
  const fixedTensors = large.filter((t) => !isFedFloat(t));

  const hashes: Record<string, string> = { [ONNX_FILE]: sha256(onnxBytes) };
  const bounds: Bounds = { dir, onnxPath, realDir: await realpath(dir), realOnnxDir: dirname(await realpath(onnxPath)) };
  const files = new Map<string, OpenFile>();
  try {
    const sources = await checkedSources([...maskTensors, ...otherTensors, ...fixedTensors], folder, bounds, files, hashes);
    const targets = new Map<string, Target[]>();
    const mask = placeApart(maskTensors, sources, targets, "dlc-maskable");
    const other = placeApart(otherTensors, sources, targets, "dlc-weight");
    const fixed = placeApart(fixedTensors, sources, targets, "dlc-fixed");
    await copyFromFiles(files, targets, hashes);
    const reread = rereadPlan(maskTensors, mask, sources, onnxBytes);
    const restoreMaskable = () => restore(reread, folder, bounds, hashes);
    return {
      maskable: maskTensors.map((t, i) => weightOf(t, mask[i]!)),
      unmasked: otherTensors.map((t, i) => weightOf(t, other[i]!)),
      fixed,
      sha256: hashes,
      restoreMaskable,
    };
  } finally {
    for (const f of files.values()) await f.handle.close();
  }
}

/** Float initializers of at least this many bytes are fed as inputs on the CPU (smaller ones cost nothing to copy). */
const FED_BYTES = 2 ** 20;

/** A float initializer's values over its own buffer (fp32, or fp16 bit patterns). */
function weightOf(t: TensorProto, buffer: ExternalBuffer): Weight {
  const dims = t.dims.map(Number);
  const n = elementCount(dims);
  const data = t.dataType === DataType.FLOAT ? new Float32Array(buffer.data.buffer, 0, n) : new Uint16Array(buffer.data.buffer, 0, n);
  return { name: t.name, dims, data, buffer };
}

/** Where the maskable weights' bytes are to be read again: ranges of the files by location, or (inline values not stored as raw bytes) a copy. */
interface Reread {
  ranges: Map<string, Target[]>;
  copies: { blob: Uint8Array; bytes: Uint8Array }[];
}

/** The ONNX file's own location in a Reread: its raw inline bytes are ranges of it. */
const OWN_FILE = "model.onnx";

function rereadPlan(tensors: TensorProto[], buffers: ExternalBuffer[], sources: Map<TensorProto, Source>, onnxBytes: Uint8Array): Reread {
  const plan: Reread = { ranges: new Map(), copies: [] };
  tensors.forEach((t, i) => {
    const s = sources.get(t)!;
    const blob = buffers[i]!.data;
    const inFile = "bytes" in s && s.bytes.buffer === onnxBytes.buffer; // raw_data: a view of the file as read
    if ("bytes" in s && !inFile) return plan.copies.push({ blob, bytes: s.bytes.slice() });
    const ref = "ref" in s ? s.ref : { location: OWN_FILE, offset: s.bytes.byteOffset - onnxBytes.byteOffset, length: s.bytes.byteLength };
    plan.ranges.set(ref.location, [...(plan.ranges.get(ref.location) ?? []), { ref, blob, tensor: t.name }]);
  });
  return plan;
}

/**
 * Reads the maskable weights again from the files they were loaded from, opened with the same checks, and
 * fails if a file's sha256 is no longer the one the run recorded.
 */
async function restore(plan: Reread, folder: ModelFolder, bounds: Bounds, recorded: Record<string, string>): Promise<void> {
  const files = new Map<string, OpenFile>();
  try {
    for (const location of plan.ranges.keys())
      files.set(
        location,
        location === OWN_FILE
          ? { path: folder.onnxPath, ...(await openRegular(folder.onnxPath, ONNX_FILE)) }
          : await openExternal(location, { name: plan.ranges.get(location)![0]!.tensor }, bounds),
      );
    const hashes: Record<string, string> = {};
    await copyFromFiles(files, plan.ranges, hashes);
    for (const [file, hash] of Object.entries(hashes))
      if (hash !== recorded[file])
        throw new UserError(
          `${join(folder.dir, file)}: changed while it was being scored (its sha256 is not the one recorded); rerun on a model folder nobody writes to`,
        );
    for (const { blob, bytes } of plan.copies) blob.set(bytes);
  } finally {
    for (const f of files.values()) await f.handle.close();
  }
}

/** Inline data must fit its shape, and external data is read for the graph's initializers only. */
function checkWhereDataLies(graph: Graph, onnxPath: string): void {
  for (const t of graph.initializer) checkInlineData(t, onnxPath);
  for (const [t, where] of otherTensors(graph))
    if (isExternal(t))
      throw new UserError(
        `${onnxPath}: ${where} (${t.name}) keeps its values in external data, which dlc-prune reads for the graph's initializers only; re-export the model with them inline`,
      );
}

/**
 * Each tensor's source, checked before a byte of a blob is allocated: its external data file opened once
 * (into `files`), its range inside the file, and all ranges together no more than the files hold.
 */
async function checkedSources(
  tensors: TensorProto[],
  { onnxPath, onnxBytes }: ModelFolder,
  bounds: Bounds,
  files: Map<string, OpenFile>,
  hashes: Record<string, string>,
): Promise<Map<TensorProto, Source>> {
  const sources = new Map<TensorProto, Source>();
  let available = onnxBytes.byteLength;
  for (const t of tensors) {
    const ref = externalRef(t, onnxPath);
    if (!ref) {
      sources.set(t, { bytes: inlineBytes(t, onnxPath) });
      continue;
    }
    if (!files.has(ref.location)) {
      const file = await openExternal(ref.location, t, bounds);
      files.set(ref.location, file);
      hashes[`onnx/${ref.location}`] = ""; // keeps the record's key order: the order files are first used
      available += file.size;
    }
    const file = files.get(ref.location)!;
    if (ref.offset + ref.length > file.size)
      throw new UserError(
        `${onnxPath}: initializer ${t.name}: its external data (offset ${ref.offset}, length ${ref.length}) runs past the end of ${file.path} (${file.size} bytes); the data file is truncated or belongs to another export`,
      );
    sources.set(t, { ref });
  }
  // Ranges of one file can overlap: bounded by the bytes present, however many initializers point there.
  const claimed = [...sources.values()].reduce((a, s) => a + sourceLength(s), 0);
  if (claimed > available)
    throw new UserError(
      `${onnxPath}: the initializers claim ${formatBytes(claimed)}, more than the model's files hold (${formatBytes(available)}): their external data ranges overlap; re-export the model`,
    );
  return sources;
}

/**
 * A buffer per tensor (its own ArrayBuffer: aligned for typed arrays), the tensor pointed at it as external
 * data `<prefix>-<i>.bin`: inline bytes copied, external ranges added to `targets`, by file.
 */
function placeApart(tensors: TensorProto[], sources: Map<TensorProto, Source>, targets: Map<string, Target[]>, prefix: string) {
  return tensors.map((t, i): ExternalBuffer => {
    const s = sources.get(t)!;
    const data = "bytes" in s ? s.bytes.slice() : new Uint8Array(s.ref.length);
    if ("ref" in s) targets.set(s.ref.location, [...(targets.get(s.ref.location) ?? []), { ref: s.ref, blob: data, tensor: t.name }]);
    const path = `${prefix}-${i}.bin`;
    setExternal(t, { location: path, offset: 0, length: data.byteLength });
    return { path, data };
  });
}

/** Reads each external data file once, in chunks, hashing it and copying its ranges into their blobs. */
async function copyFromFiles(files: Map<string, OpenFile>, targets: Map<string, Target[]>, hashes: Record<string, string>) {
  for (const [location, file] of files) {
    const hash = createHash("sha256");
    const chunk = new Uint8Array(Math.min(READ_CHUNK, file.size));
    for (let pos = 0; pos < file.size; pos += chunk.byteLength) {
      const view = chunk.subarray(0, Math.min(chunk.byteLength, file.size - pos));
      await readFully(file.handle, file.path, view, pos);
      hash.update(view);
      for (const { ref, blob } of targets.get(location) ?? []) {
        const from = Math.max(ref.offset, pos);
        const to = Math.min(ref.offset + ref.length, pos + view.byteLength);
        if (from < to) blob.set(view.subarray(from - pos, to - pos), from - ref.offset);
      }
    }
    hashes[`onnx/${location}`] = hash.digest("hex");
  }
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
    const headDim =
      staticDim(vi, 3) ??
      config.head_dim ??
      (config.hidden_size && config.num_attention_heads ? config.hidden_size / config.num_attention_heads : undefined);
    if (!kvHeads || !headDim) throw new UserError(`${onnxPath}: cannot tell the shape of ${vi.name}`);
    past.push({ name: vi.name, dims: [kvHeads, headDim], type: tensorType(vi)?.elemType === DataType.FLOAT16 ? "float16" : "float32" });
  }
  const unknown = inputNames.filter((n) => n !== ids && n !== mask && n !== positions && !n.startsWith("past_key_values."));
  if (unknown.length)
    throw new UserError(`${onnxPath}: unsupported model inputs ${unknown.join(", ")} (expected a decoder-with-past export)`);
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
  if (new Set(known.map(([, n]) => n)).size > 1)
    throw new UserError(
      `${onnxPath}: vocabulary sizes disagree (${known.map(([what, n]) => `${what} ${n}`).join(", ")}): the folder's files do not belong to one model`,
    );
  return known[0]?.[1] ?? null;
}

/** Ops that act on each logit alone (with constant operands: a bias, a scale, a soft-cap), so they commute with picking rows. */
const ROWWISE_OPS = new Set(["Cast", "Add", "Sub", "Mul", "Div", "Tanh", "Identity"]);

/**
 * The LM head's MatMul when the logits are it followed only by row-wise ops on constants (a chain that can
 * run on some positions alone), else undefined.
 */
function liftableHead(graph: Graph): NodeProto | undefined {
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const constants = new Set([
    ...graph.initializer.map((t) => t.name),
    ...graph.node.filter((n) => n.opType === "Constant").flatMap((n) => n.output),
  ]);
  let value = "logits";
  for (;;) {
    const node = producer.get(value);
    if (!node) return undefined;
    if (node.opType === "MatMul") return constants.has(node.input[1]!) ? node : undefined;
    const varying = node.input.filter((i) => !constants.has(i));
    if (!ROWWISE_OPS.has(node.opType) || varying.length !== 1) return undefined;
    value = varying[0]!;
  }
}

/**
 * log p(target) = logit[target] - logsumexp(logits) at the scored positions only, computed in the graph: the
 * one output the scorer reads ([scored positions], never [batch, seq, vocab] to JavaScript). The hidden
 * states are gathered at those positions before the LM head where the head allows (most of a batch's
 * positions are prompt or padding, and the head is the largest MatMul), else the logits are.
 */
function addLogProbHead(model: ModelProto): void {
  const graph = model.graph!;
  const logits = graph.output.find((o) => o.name === "logits")!;
  const g = new GraphBuilder("/dlc");
  const targets = g.input(TARGETS_INPUT, DataType.INT64, ["scored"]);
  const positions = g.input(POSITIONS_INPUT, DataType.INT64, ["scored"]);
  const pick = (rows: string) => g.op1("Gather", [g.op1("Flatten", [rows], { axis: 2 }), positions], { axis: 0 });
  const head = liftableHead(graph);
  let scored: string; // [scored, vocab]
  if (head) {
    // The head's input becomes [1, scored, hidden]; the ops after it see fewer rows of the same width.
    head.input[0] = g.op1("Unsqueeze", [pick(head.input[0]!), g.int64([0])]);
    scored = g.op1("Squeeze", [logits.name, g.int64([0])]);
  } else scored = pick(logits.name);
  const x = tensorType(logits)?.elemType === DataType.FLOAT16 ? g.op1("Cast", [scored], { to: DataType.FLOAT }) : scored;
  const lastAxis = g.int64([-1]);
  const picked = g.op1("GatherElements", [x, g.op1("Unsqueeze", [targets, lastAxis])], { axis: -1 });
  const lse =
    opsetOf(model) >= 18
      ? g.op1("ReduceLogSumExp", [x, lastAxis], { keepdims: 1 })
      : g.op1("ReduceLogSumExp", [x], { axes: [-1], keepdims: 1 });
  g.op1("Squeeze", [g.op1("Sub", [picked, lse]), lastAxis], {}, LOGPROBS_OUTPUT);
  g.output(LOGPROBS_OUTPUT, DataType.FLOAT, ["scored"]);
  graph.node.push(...g.nodes);
  graph.initializer.push(...g.initializers);
  graph.input.push(...g.inputs);
  graph.output = g.outputs;
}

/** The model with the initializers of `weights` turned into graph inputs of the same type and shape. */
function withWeightsAsInputs(model: ModelProto, weights: Weight[]): ModelProto {
  const graph = model.graph!;
  const names = new Set(weights.map((w) => w.name));
  const types = new Map(graph.initializer.filter((t) => names.has(t.name)).map((t) => [t.name, t.dataType]));
  const listed = new Set(graph.input.map((i) => i.name)); // IR < 4 lists initializers as inputs too
  const inputs = weights.filter((w) => !listed.has(w.name)).map((w) => valueInfo(w.name, types.get(w.name)!, w.dims));
  return {
    ...model,
    graph: { ...graph, initializer: graph.initializer.filter((t) => !names.has(t.name)), input: [...graph.input, ...inputs] },
  };
}

export async function loadScoringModel(modelDir: string, inventory: InventoryOptions): Promise<ScoringModel> {
  const folder = await readModelFolder(resolve(modelDir));
  const { dir, onnxPath, model, config } = folder;
  const graph = model.graph!;
  if (!graph.output.some((o) => o.name === "logits")) throw new UserError(`${onnxPath}: no "logits" output`);
  const names = maskableInitializers(model, inventory, onnxPath);
  const inputs = scorerInputs(graph, config, onnxPath);
  const vocabSize = vocabSizeOf(graph, inputs.ids, config, onnxPath);
  const weights = await moveWeights(graph, names, folder);
  // The tokenizer is part of the model's identity too: the run record hashes the rendered rows, not their tokens.
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) weights.sha256[f] = sha256(await readModelJson(dir, f));
  addLogProbHead(model);
  const weightsAsInitializers = encodeModel(model);
  return {
    dir,
    onnxPath,
    ...weights,
    graphs: { weightsAsInitializers, weightsAsInputs: encodeModel(withWeightsAsInputs(model, [...weights.maskable, ...weights.unmasked])) },
    inputs,
    maxPositions: config.max_position_embeddings ?? config.n_positions ?? config.n_ctx ?? null,
    vocabSize,
  };
}
