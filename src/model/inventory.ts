// Which initializers DLC masks: every 2-D floating-point weight of a MatMul/Gemm (in a Llama export, the
// decoder blocks' projections). The LM head (the MatMul nearest the logits) and tensors shared with the embedding lookup are left alone
// unless `include` names them; `exclude` removes any.
import picomatch from "picomatch";
import { UserError } from "../util/errors.js";
import { DataType, type ModelProto, type NodeProto } from "./onnx.js";

export interface InventoryOptions {
  include: string[];
  exclude: string[];
}

const QUANTIZED_OPS = new Set([
  "MatMulNBits",
  "MatMulInteger",
  "MatMulIntegerToFloat",
  "QLinearMatMul",
  "DynamicQuantizeMatMul",
  "QGemm",
  "QAttention",
  "DequantizeLinear",
  "GatherBlockQuantized",
]);

export const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);

/** A node multiplying by a weight matrix (its input 1). */
const isMatMul = (n: NodeProto) => n.opType === "MatMul" || n.opType === "Gemm";

/** MatMul/Gemm nodes that produce `output` through non-MatMul ops only (the LM head for "logits"). */
export function headNodes(nodes: NodeProto[], output: string): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const heads: NodeProto[] = [];
  const seen = new Set<NodeProto>();
  const queue = [output];
  while (queue.length) {
    const node = producer.get(queue.pop()!);
    if (!node || seen.has(node)) continue;
    seen.add(node);
    if (isMatMul(node)) heads.push(node);
    else queue.push(...node.input);
  }
  return heads;
}

export function maskableInitializers(model: ModelProto, opts: InventoryOptions, file: string): string[] {
  const graph = model.graph!;
  const init = new Map(graph.initializer.map((t) => [t.name, t]));
  const quantized = graph.node.find((n) => QUANTIZED_OPS.has(n.opType));
  const weightOf = (n: NodeProto) => (isMatMul(n) && n.input[1] ? init.get(n.input[1]) : undefined);
  const intWeight = graph.node.map(weightOf).find((t) => t && (t.dataType === DataType.INT8 || t.dataType === DataType.UINT8));
  if (quantized || intWeight)
    throw new UserError(
      `${file}: a quantized model (${quantized ? quantized.opType : `int8 weight ${intWeight!.name}`}); DLC masks fp32/fp16 weights: ` +
        `export or download the fp32 (onnx/model.onnx) or fp16 (onnx/model_fp16.onnx) variant instead`,
    );

  const isFloatMatrix = (name: string) => {
    const t = init.get(name);
    return !!t && t.dims.length === 2 && FLOAT_TYPES.has(t.dataType);
  };
  const logits = graph.output.find((o) => o.name === "logits") ?? graph.output[0];
  const head = new Set(headNodes(graph.node, logits!.name).map((n) => n.input[1]));
  const embedding = new Set(graph.node.filter((n) => n.opType === "Gather").map((n) => n.input[0]));
  const candidates = new Set(
    graph.node
      .filter(isMatMul)
      .map((n) => n.input[1]!)
      .filter((name) => isFloatMatrix(name) && !head.has(name) && !embedding.has(name)),
  );
  const included = opts.include.length ? picomatch(opts.include) : () => false;
  const excluded = opts.exclude.length ? picomatch(opts.exclude) : () => false;
  // Graph initializer order: stable, and the order of the global ranking's ties.
  const names = graph.initializer
    .map((t) => t.name)
    .filter((name) => (candidates.has(name) || (included(name) && isFloatMatrix(name))) && !excluded(name));
  if (names.length === 0)
    throw new UserError(`${file}: no maskable weights (2-D fp32/fp16 MatMul/Gemm initializers) after include/exclude`);
  return names;
}
