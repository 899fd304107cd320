// `BENCH_SECTIONS=shapes`: dlc-prune on random-weight checkpoints of real models' shapes (Qwen2.5-0.5B,
// TinyLlama-1.1B) saved by transformers in bf16 safetensors, against the PyTorch peer (HF transformers fp32, the
// paper's one-row loop and padded batches, torch.nn.utils.prune masks) on the same token ids, in one invocation:
// conversion time and memory, per-level masking / session / pass time, tokens/s, peak RSS against the fp32
// weights, the MatMul roofline, and the largest loss difference per level. Needs TORCH_PYTHON (skipped without).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { copyFileSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config/load.js";
import { readScoresFile } from "../src/contract/file.js";
import { DataSource } from "../src/data/source.js";
import { writeTinyModel, TINY_DEFAULTS } from "../src/kit/tiny.js";
import type { ScoreResult } from "../src/score/score.js";
import { encodeDataset } from "../src/text/encode.js";
import { loadTokenizer } from "../src/text/tokenizer.js";

type Run = ScoreResult & { maxRssMiB: number };
type Runner = (config: Record<string, unknown>) => Promise<Run>;
type Table = (rows: string[][]) => void;
type Set = (o: Record<string, unknown>) => Record<string, unknown>;
interface PeerRun {
  load: number;
  total: number;
  levels: ({ mask: number } & Record<"loop" | "batched", { pass: number; losses: number[]; maxRssMiB: number }>)[];
  maxRssMiB: number;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));
const LEVELS = 3;
const INTERVAL = 0.2; // the default layer-scope schedule's
const MAX_TOKENS = 256;
const BATCH_TOKENS = 2048; // score.batch_tokens' default, also the peer's padded-batch budget
const SHAPES: Record<string, string> = { "qwen2.5-0.5b": "Qwen2.5-0.5B shape", "tinyllama-1.1b": "TinyLlama-1.1B shape" };
const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Every MatMul weight of the forward pass (q/k/v/o, gate/up/down per layer, and the LM head, tied or not), from config.json. */
function matmulParams(cfg: Record<string, number>): number {
  const [H, I, L, V] = [cfg.hidden_size!, cfg.intermediate_size!, cfg.num_hidden_layers!, cfg.vocab_size!];
  const D = cfg.head_dim ?? H / cfg.num_attention_heads!;
  const [q, kv] = [cfg.num_attention_heads! * D, cfg.num_key_value_heads! * D];
  return L * (H * q + 2 * H * kv + q * H + 3 * H * I) + V * H;
}

const bytesUnder = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (a, e) => a + (e.isDirectory() ? bytesUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0,
  );

async function timedChild(file: string, args: string[]): Promise<{ stdout: string; seconds: number }> {
  const t = performance.now();
  const { stdout } = await run(file, args, { encoding: "utf8", maxBuffer: 1 << 26 });
  return { stdout, seconds: (performance.now() - t) / 1000 };
}

export async function benchShapes(shared: string, tmp: string, gflops: number, runScore: Runner, set: Set, table: Table): Promise<void> {
  const python = process.env.TORCH_PYTHON;
  if (!python) {
    console.log("\nshapes: skipped: TORCH_PYTHON is unset (a python with torch, transformers 5 and safetensors)");
    return;
  }
  const rowCount = Number(process.env.BENCH_SHAPE_ROWS ?? 300);
  const shapes = (process.env.BENCH_SHAPES ?? Object.keys(SHAPES).join(",")).split(",").filter(Boolean);
  const unknown = shapes.filter((s) => !(s in SHAPES));
  if (unknown.length) throw new Error(`BENCH_SHAPES: unknown ${unknown.join(", ")} (known: ${Object.keys(SHAPES).join(", ")})`);
  const peerScript = join(HERE, "torch_peer.py");

  // The kit's tokenizer (vocab 4096 fits both vocabularies): its files go beside each checkpoint.
  const tokDir = join(tmp, "shapes-tokenizer");
  await writeTinyModel(tokDir, { ...TINY_DEFAULTS, vocab: 4096 });
  const data = join(tmp, `alpaca-${rowCount}.jsonl`);
  const alpaca = JSON.parse(readFileSync(join(shared, "datasets/alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as object[];
  writeFileSync(
    data,
    alpaca
      .slice(0, rowCount)
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
  );

  const main: string[][] = [
    [
      "model",
      "MatMul params",
      "rows scored",
      "tokens/level",
      "convert (s)",
      "convert peak RSS (MiB)",
      "fp32 weights (MiB)",
      "tokens/s",
      "DLC wall (s)",
      "roofline",
      "peak RSS (MiB)",
      "RSS / weights",
      "target (MiB)",
    ],
  ];
  const perLevel: string[][] = [["model", "level", "mask (s)", "session (s)", "pass (s)", "tokens/s"]];
  const peers: string[][] = [
    ["model", "runner", "wall (s)", "load (s)", "masking (s)", "passes (s)", "tokens/s", "peak RSS (MiB)", "max |loss diff| per level"],
  ];
  for (const shape of shapes) {
    const name = SHAPES[shape]!;
    const ckpt = join(tmp, `ckpt-${shape}`);
    const made = await timedChild(python, [peerScript, "make", shape, tokDir, ckpt]);
    const cfg = JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8")) as Record<string, number>;
    console.log(
      `\nshapes: ${name}: checkpoint written by transformers in ${made.seconds.toFixed(1)} s (${(bytesUnder(ckpt) / MiB).toFixed(0)} MiB)`,
    );
    const cache = join(tmp, `cache-${shape}`);
    const base = {
      "data.path": data,
      "model.path": ckpt,
      "model.cache": cache,
      template: "alpaca",
      "score.max_tokens": MAX_TOKENS,
      "score.levels": LEVELS,
      "score.interval": INTERVAL,
      "score.out": join(tmp, `shapes-${shape}.arrow`),
    };
    // The first run converts: here in its own process, so that its peak RSS is its own.
    const conversion = JSON.parse(
      (await timedChild(process.execPath, ["--import", "tsx", join(HERE, "convert-once.ts"), JSON.stringify(set(base))])).stdout.trim(),
    ) as { path: string; seconds: number; maxRssMiB: number };
    const weightBytes = bytesUnder(join(conversion.path, "onnx"));
    const dlc = await runScore(set(base));
    console.error(
      `shapes: ${name}: converted in ${conversion.seconds.toFixed(1)} s; scored: ${JSON.stringify({ seconds: dlc.seconds, maxRssMiB: dlc.maxRssMiB })}`,
    );

    // dlc-prune's token ids and response spans, for the peer.
    const config = parseConfig(set(base), "bench");
    const encoded = await encodeDataset(new DataSource(config.data), config.template, await loadTokenizer(conversion.path), MAX_TOKENS, {
      truncated: config.score.truncated,
    });
    const rows = encoded.encoded.map((e) => ({ row: e.row, ids: Array.from(e.ids), spans: e.spans }));
    const encodedPath = join(tmp, `encoded-${shape}.json`);
    writeFileSync(encodedPath, JSON.stringify({ levels: LEVELS, interval: INTERVAL, batch_tokens: BATCH_TOKENS, rows }));
    const scores = await readScoresFile(dlc.out);
    const ours = (r: number, k: number) => scores.cols.losses[r * LEVELS + k]!;

    const params = matmulParams(cfg);
    const passes = dlc.seconds.levels.reduce((a, l) => a + l.pass, 0);
    const tokensPerSecond = (dlc.tokens * LEVELS) / passes;
    // The target: 1.5 x the fp32 weights + one batch's activations, of which the logits of a full batch dominate.
    const target = (1.5 * weightBytes + BATCH_TOKENS * cfg.vocab_size! * 4) / MiB;
    main.push([
      name,
      `${(params / 1e6).toFixed(1)}M`,
      `${dlc.scored} of ${dlc.rows}`,
      String(dlc.tokens),
      conversion.seconds.toFixed(1),
      conversion.maxRssMiB.toFixed(0),
      (weightBytes / MiB).toFixed(0),
      tokensPerSecond.toFixed(1),
      dlc.seconds.total.toFixed(1),
      ((tokensPerSecond * 2 * params) / (gflops * 1e9)).toFixed(3),
      dlc.maxRssMiB.toFixed(0),
      ((dlc.maxRssMiB * MiB) / weightBytes).toFixed(2),
      target.toFixed(0),
    ]);
    dlc.seconds.levels.forEach((l, k) =>
      perLevel.push([name, String(k), l.mask.toFixed(2), l.session.toFixed(2), l.pass.toFixed(1), (dlc.tokens / l.pass).toFixed(1)]),
    );
    peers.push([
      name,
      `dlc-prune (onnxruntime, ${dlc.threads} threads)`,
      dlc.seconds.total.toFixed(1),
      dlc.seconds.prepare.toFixed(1),
      dlc.seconds.levels.reduce((a, l) => a + l.mask + l.session, 0).toFixed(1),
      passes.toFixed(1),
      tokensPerSecond.toFixed(1),
      dlc.maxRssMiB.toFixed(0),
      "",
    ]);
    // Both runners in one process: the model loaded and masked once per level, then the loop, then the batches.
    const peerOut = join(tmp, `peer-${shape}.json`);
    const peerRun = await timedChild(python, [peerScript, "score", ckpt, encodedPath, String(dlc.threads), peerOut]);
    const peer = JSON.parse(readFileSync(peerOut, "utf8")) as PeerRun;
    const keep = process.env.BENCH_SHAPES_KEEP;
    if (keep) for (const f of [peerOut, encodedPath, dlc.out]) copyFileSync(f, join(keep, basename(f)));
    const peerMasking = peer.levels.reduce((a, l) => a + l.mask, 0);
    console.error(`shapes: ${name}: peer in ${peerRun.seconds.toFixed(1)} s, peak RSS ${peer.maxRssMiB.toFixed(0)} MiB`);
    for (const mode of ["loop", "batched"] as const) {
      const diffs = peer.levels.map((l, k) => Math.max(...rows.map((r, i) => Math.abs(l[mode].losses[i]! - ours(r.row, k)))));
      const peerPasses = peer.levels.reduce((a, l) => a + l[mode].pass, 0);
      peers.push([
        name,
        mode === "loop" ? "transformers fp32, one row at a time" : `transformers fp32, padded batches (${BATCH_TOKENS} slots)`,
        (peer.load + peerMasking + peerPasses).toFixed(1),
        peer.load.toFixed(1),
        peerMasking.toFixed(1),
        peerPasses.toFixed(1),
        ((dlc.tokens * LEVELS) / peerPasses).toFixed(1),
        mode === "loop" ? `${peer.levels[0]!.loop.maxRssMiB.toFixed(0)} (level 0)` : peer.maxRssMiB.toFixed(0),
        diffs.map((d) => d.toExponential(1)).join(" / "),
      ]);
    }
    console.log(`shapes: ${name}: the peer's process ran ${peerRun.seconds.toFixed(1)} s in all (python start-up included)`);
    const mean0 = rows.reduce((a, r) => a + ours(r.row, 0), 0) / rows.length;
    console.log(
      `shapes: ${name}: mean level-0 loss ${mean0.toFixed(3)} (random weights: about ln(vocab) = ${Math.log(cfg.vocab_size!).toFixed(3)})`,
    );
  }
  console.log("");
  table(main);
  console.log("");
  table(perLevel);
  console.log("");
  table(peers);
  console.log(`
  ${rowCount} Alpaca-cleaned rows, template alpaca, max_tokens ${MAX_TOKENS}, ${LEVELS} levels (layer scope, interval ${INTERVAL}, l1); MatMul throughput ${gflops.toFixed(1)} GFLOP/s.
  convert: hashing the checkpoint and import-hf into model.cache, in its own process (peak RSS its own).
  tokens/s: non-padding tokens per second of the scoring passes (all levels); the peer's over its passes, on the same tokens.
  RSS / weights: scoring's peak RSS / the converted fp32 weights; target: 1.5 x weights + a full batch's fp32 logits (${BATCH_TOKENS} x vocab).
  peer: one python process runs both (loading and masking timed once, counted in both walls); peak RSS: the loop's at level 0
  (before any batch or mask), the process's (masks included) for the batches.
  max |loss diff|: per level, over the scored rows, the peer's mean response NLL against the scores file's (its masks rank ties by position, as dlc-prune).`);
}
