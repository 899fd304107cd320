// `npm run bench`: scoring throughput, padding, DLC overhead, peak memory and the MatMul roofline, for
// stories260K and a >= 20M-parameter tiny model on the same instruction data. Every figure comes from this
// one run (machines are noisy: compare ratios, not absolute numbers across runs).
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importLlama2c } from "../src/kit/llama2c.js";
import { writeTinyModel, TINY_DEFAULTS } from "../src/kit/tiny.js";
import { loadScoringModel } from "../src/model/scoring-graph.js";
import type { ScoreResult } from "../src/score/score.js";
import { parseConfig } from "../src/config/load.js";
import { DataSource } from "../src/data/source.js";
import { ownsRow } from "../src/score/plan.js";
import { planOf } from "../src/score/setup.js";
import { encodeDataset, type EncodedDataset } from "../src/text/encode.js";
import { loadTokenizer, type TextTokenizer } from "../src/text/tokenizer.js";
import { benchRefinement, writePool } from "./refine.js";
import { benchShapes } from "./shapes.js";

const SHARED = fileURLToPath(new URL("../../shared/", import.meta.url));
const HERE = fileURLToPath(new URL(".", import.meta.url));
const LEVELS = 3;
const ROWS_PER_SOURCE = Number(process.env.BENCH_ROWS ?? 100);
/**
 * BENCH_SECTIONS=scoring,tokenizing,shards,estimate,refine (the default) runs only those; `shapes` (real models' shapes against
 * PyTorch, needs TORCH_PYTHON; BENCH_SHAPES, BENCH_SHAPE_ROWS) is not in the default list: it takes many minutes.
 */
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? "scoring,tokenizing,shards,estimate,refine").split(","));

if (!existsSync(join(SHARED, "models/stories260K/stories260K.bin"))) {
  console.log(`bench: skipped: ${SHARED} is absent (the benchmark needs stories260K and the shared datasets)`);
  process.exit(0);
}
const tmp = mkdtempSync(join(tmpdir(), "dlc-bench-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

type Run = ScoreResult & { maxRssMiB: number };

/** { "score.levels": 3 } -> { score: { levels: 3 } } */
function set(o: Record<string, unknown>): Record<string, unknown> {
  const raw: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(o)) {
    const [a, b] = k.split(".") as [string, string | undefined];
    if (b === undefined) (raw as Record<string, unknown>)[a] = v;
    else (raw[a] ??= {})[b] = v;
  }
  return raw;
}

async function runScore(config: Record<string, unknown>): Promise<Run> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(HERE, "score-once.ts"), JSON.stringify(config)], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  return JSON.parse(stdout.trim().split("\n").pop()!) as Run;
}

function matmulGflops(): number {
  const out = execFileSync(process.execPath, ["--import", "tsx", join(HERE, "matmul.ts"), "1024"], { encoding: "utf8" });
  return (JSON.parse(out.trim()) as { gflops: number }).gflops;
}

async function matmulParams(dir: string): Promise<number> {
  // Every MatMul weight the forward pass multiplies by, the LM head included (a tied head counts the embedding).
  const model = await loadScoringModel(dir, { include: ["lm_head.*"], exclude: [] });
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as {
    tie_word_embeddings: boolean;
    vocab_size: number;
    hidden_size: number;
  };
  const blocks = model.maskable.reduce((a, w) => a + w.data.length, 0);
  return blocks + (cfg.tie_word_embeddings ? cfg.vocab_size * cfg.hidden_size : 0);
}

const data = writePool(SHARED, [ROWS_PER_SOURCE, ROWS_PER_SOURCE, ROWS_PER_SOURCE], join(tmp, "pool.jsonl"));
const models: { name: string; dir: string }[] = [];
const stories = join(tmp, "stories260K");
await importLlama2c({
  checkpoint: join(SHARED, "models/stories260K/stories260K.bin"),
  tokenizer: join(SHARED, "models/stories260K/tok512.bin"),
  out: stories,
});
models.push({ name: "stories260K", dir: stories });
const big = join(tmp, "tiny-25M");
await writeTinyModel(big, { ...TINY_DEFAULTS, layers: 8, hidden: 512, heads: 8, kv_heads: 4, vocab: 4096, max_positions: 512 });
models.push({ name: "tiny 8x512 (GQA 8/4, vocab 4096)", dir: big });

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c]!)).join("  "));
}

const gflops = matmulGflops();
console.log(`machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; node ${process.version}`);
console.log(`onnxruntime fp32 MatMul throughput (chain of 8 x 1024^3): ${gflops.toFixed(1)} GFLOP/s`);
console.log(
  `data: ${data.split("/").pop()} = ${3 * ROWS_PER_SOURCE} rows (Alpaca-cleaned, CodeAlpaca, GSM8K), template alpaca, max_tokens 256\n`,
);

if (SECTIONS.has("scoring")) {
  const rows: string[][] = [
    [
      "model",
      "MatMul params",
      "tokens/level",
      "padding",
      "tokens/s",
      "1 pass (s)",
      "DLC wall (s)",
      "overhead",
      "roofline",
      "peak RSS (MiB)",
    ],
  ];
  for (const m of models) {
    const params = await matmulParams(m.dir);
    const base = { "data.path": data, "model.path": m.dir, template: "alpaca", "score.max_tokens": 256 }; // default batch_tokens
    const dlc = await runScore(set({ ...base, "score.levels": LEVELS, "score.out": join(tmp, "dlc.arrow") }));
    // The unmasked pass is level 0 of the same run: ratios from one process, not two noisy ones.
    const pass = dlc.seconds.levels[0]!.pass;
    const passes = dlc.seconds.levels.reduce((a, l) => a + l.pass, 0);
    const tokensPerSecond = (dlc.tokens * LEVELS) / passes;
    rows.push([
      m.name,
      `${(params / 1e6).toFixed(2)}M`,
      String(dlc.tokens),
      dlc.paddingRatio.toFixed(3),
      tokensPerSecond.toFixed(0),
      pass.toFixed(2),
      dlc.seconds.total.toFixed(2),
      (dlc.seconds.total / (LEVELS * pass)).toFixed(3),
      ((tokensPerSecond * 2 * params) / (gflops * 1e9)).toFixed(3),
      dlc.maxRssMiB.toFixed(0),
    ]);
  }
  table(rows);
  console.log(`
  tokens/s: non-padding tokens run through the model per second of scoring passes (all ${LEVELS} levels).
  overhead: DLC wall time (load, tokenize, ${LEVELS} x (mask, session, pass), write) / (${LEVELS} x the unmasked pass, level 0 of the same run).
  roofline: tokens/s x 2 x MatMul params / the MatMul throughput above.`);
}

/**
 * Tokenizing 4,000 shared rows (in file order) with each model's tokenizer: transformers.js alone, the native
 * tokenizer (its ids must equal), and one shard of 2, which reads and renders every row but tokenizes its own;
 * then the padding of the batch plan by score.block_rows.
 */
async function benchTokenizing(): Promise<void> {
  const path = writePool(SHARED, [1000, 2000, 1000], join(tmp, "tokenizing.jsonl"));
  const config = parseConfig(set({ "data.path": path, "model.path": stories, template: "alpaca" }), "bench");
  const rows: string[][] = [
    [
      "tokenizer",
      "rows",
      "transformers.js (rows/s)",
      "native (rows/s)",
      "native / transformers.js",
      "ids equal",
      "shard 0/2 (rows read/s)",
    ],
  ];
  let padding: EncodedDataset | undefined;
  for (const m of models) {
    const tok = await loadTokenizer(m.dir);
    const timed = async (t: TextTokenizer, owns?: (row: number) => boolean) => {
      const start = performance.now();
      const encoded = await encodeDataset(new DataSource(config.data), config.template, t, 512, { owns });
      return { encoded, rate: encoded.rows / ((performance.now() - start) / 1000) };
    };
    const reference = await timed({ ...tok, native: undefined });
    const native = await timed(tok);
    const shard = await timed(tok, (row) => ownsRow({ index: 0, count: 2 }, 1024, row));
    const same =
      JSON.stringify(native.encoded.encoded.map((e) => [e.row, e.spans, Array.from(e.ids)])) ===
      JSON.stringify(reference.encoded.encoded.map((e) => [e.row, e.spans, Array.from(e.ids)]));
    rows.push([
      m.name,
      String(reference.encoded.rows),
      reference.rate.toFixed(0),
      tok.native ? native.rate.toFixed(0) : "(not installed)",
      (native.rate / reference.rate).toFixed(2),
      same ? "yes" : "NO",
      shard.rate.toFixed(0),
    ]);
    padding ??= native.encoded;
  }
  console.log(`\ntokenizing: 1,000 Alpaca-cleaned, 2,000 CodeAlpaca and 1,000 GSM8K rows (in that order), template alpaca, max_tokens 512`);
  table(rows);
  const blocks: string[][] = [["score.block_rows", "batches", "padding"]];
  for (const block of [64, 256, 1024, padding!.rows]) {
    const plan = planOf(padding!, { ...config.score, block_rows: block });
    blocks.push([block === padding!.rows ? `${block} (one block)` : String(block), String(plan.batches.length), plan.padding.toFixed(4)]);
  }
  console.log(
    `\npadding of the batches (budget ${config.score.batch_tokens} tokens) by score.block_rows, ${models[0]!.name}'s tokens of the same rows`,
  );
  table(blocks);
}

if (SECTIONS.has("tokenizing")) await benchTokenizing();

// Scaling out on one machine: one process with all cores vs shard processes splitting them (one level, so the
// comparison is of the scoring work; wall time from process start to the last shard's end). Blocks of 50
// rows: each of 2 shards owns 3 of the 300 rows' 6 blocks.
if (SECTIONS.has("shards")) {
  const cores = availableParallelism();
  const shardRows: string[][] = [["model", "processes x threads", "wall (s)", "tokens/s", "vs 1 process"]];
  for (const m of models) {
    const base = {
      "data.path": data,
      "model.path": m.dir,
      template: "alpaca",
      "score.max_tokens": 256,
      "score.levels": 1,
      "score.block_rows": Math.ceil((3 * ROWS_PER_SOURCE) / 6),
    };
    let single = 0;
    for (const processes of [1, 2]) {
      const t = performance.now();
      const runs = await Promise.all(
        Array.from({ length: processes }, (_, i) =>
          runScore(
            set({
              ...base,
              "score.out": join(tmp, `shards-${processes}.arrow`),
              "score.threads": Math.max(1, Math.floor(cores / processes)),
              ...(processes > 1 ? { "score.shard": `${i}/${processes}` } : {}),
            }),
          ),
        ),
      );
      const wall = (performance.now() - t) / 1000;
      const rate = runs.reduce((a, r) => a + r.tokens, 0) / wall;
      if (processes === 1) single = rate;
      shardRows.push([
        m.name,
        `${processes} x ${Math.max(1, Math.floor(cores / processes))}`,
        wall.toFixed(2),
        rate.toFixed(0),
        (rate / single).toFixed(3),
      ]);
    }
  }
  console.log("");
  table(shardRows);
  console.log("tokens/s here: non-padding tokens of one unmasked pass over all rows / wall time of all processes (start-up included).");
}

// `estimate` against the run it predicts: stories260K on the 1,000 Alpaca-cleaned rows, the demo's 3 levels.
if (SECTIONS.has("estimate")) {
  const alpaca1k = join(tmp, "alpaca-1k.jsonl");
  writeFileSync(
    alpaca1k,
    (JSON.parse(readFileSync(join(SHARED, "datasets/alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as object[])
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
  );
  const recipe = [
    "--config",
    "/dev/null",
    "--set",
    `data.path=${alpaca1k}`,
    "--set",
    `model.path=${stories}`,
    "--set",
    "template=alpaca",
    "--set",
    `score.out=${join(tmp, "est/scores.arrow")}`,
    "--set",
    `select.out_dir=${join(tmp, "est")}`,
    "--set",
    "select.ratios=[0.1,0.3,0.5]",
  ];
  const cliMain = join(HERE, "../src/cli/main.ts");
  const timed = async (args: string[]) => {
    const t = performance.now();
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", cliMain, ...args], {
      encoding: "utf8",
      maxBuffer: 1 << 26,
    });
    return { stdout, seconds: (performance.now() - t) / 1000 };
  };
  const predicted = await timed(["estimate", ...recipe]);
  const predictedSeconds = Number(
    /expected wall time: (?:(\d+)m)?(\d+)s/
      .exec(predicted.stdout)!
      .slice(1)
      .reduce((a, v, i) => a + (v ? Number(v) * (i === 0 ? 60 : 1) : 0), 0),
  );
  const actual = await timed(["run", ...recipe]);
  console.log("");
  table([
    [
      "estimate vs run (stories260K, 1000 Alpaca rows, 3 levels)",
      "estimate (s)",
      "run wall (s)",
      "estimate / run",
      "estimate's own wall (s)",
    ],
    ["", String(predictedSeconds), actual.seconds.toFixed(1), (predictedSeconds / actual.seconds).toFixed(3), predicted.seconds.toFixed(1)],
  ]);
  console.log(predicted.stdout.trim());
}

if (SECTIONS.has("refine")) await benchRefinement(stories, SHARED, tmp, runScore, set, table);
if (SECTIONS.has("shapes")) await benchShapes(SHARED, tmp, gflops, runScore, set, table);
