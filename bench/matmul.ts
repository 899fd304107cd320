// onnxruntime's fp32 MatMul throughput on this machine: a chain of large square MatMuls, best of several runs.
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder, encodeModel } from "../src/model/onnx.js";
import { threadCount } from "../src/score/session.js";

const N = Number(process.argv[2] ?? 1024);
const CHAIN = 8;
const threads = threadCount(Number(process.argv[3] ?? 0)); // as the scorer sets them
const g = new GraphBuilder();
let x = g.input("x", DataType.FLOAT, [N, N]);
for (let i = 0; i < CHAIN; i++) {
  const w = Float32Array.from({ length: N * N }, (_, j) => (((j * 2654435761 + i) % 1000) / 1000 - 0.5) / Math.sqrt(N));
  x = g.op1("MatMul", [x, g.initializer(`w${i}`, DataType.FLOAT, [N, N], w)], {}, i === CHAIN - 1 ? "y" : undefined);
}
g.output("y", DataType.FLOAT, [N, N]);
const session = await ort.InferenceSession.create(encodeModel(g.toModel({ name: "matmul", opset: 17, producer: "bench" })), {
  intraOpNumThreads: threads,
  graphOptimizationLevel: "all",
});
const input = new ort.Tensor(
  "float32",
  Float32Array.from({ length: N * N }, (_, j) => ((j % 97) - 48) / 97),
  [N, N],
);
await session.run({ x: input }); // warm-up
let best = Infinity;
for (let r = 0; r < 5; r++) {
  const t = performance.now();
  await session.run({ x: input });
  best = Math.min(best, (performance.now() - t) / 1000);
}
process.stdout.write(JSON.stringify({ gflops: (2 * N * N * N * CHAIN) / best / 1e9 }) + "\n");
