// The import streams tensor by tensor: converting a checkpoint of ~600 MB of fp32 weights in 3 MB tensors holds
// one tensor at a time, not the model. The peak RSS of a process importing it is compared with that of the same
// process loading the importer and importing nothing: the difference must stay far below the model's size (the
// import held the whole model twice, ~1.2 GB here, before it streamed).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { hfConfig, TOKENIZER_FILES } from "../helpers/hf-checkpoint.js";
import { tinyModel } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";
import { safetensorsBytes, type RefTensor } from "../reference/safetensors.js";

const IMPORTER = fileURLToPath(new URL("../../dist/kit/hf-import.js", import.meta.url));
const MiB = 1024 * 1024;
const [H, I, LAYERS, SHARDS] = [512, 1536, 48, 6];

const tmp = tempDir("dlc-prune-hf-memory-");
let tinyDir: string;

/** A deep, narrow llama checkpoint in bf16 shards: many small tensors (the largest 3 MiB in fp32). */
function writeDeepCheckpoint(dir: string): { fp32Bytes: number; largestBytes: number } {
  mkdirSync(dir);
  const vocab = 512; // the kit's tokenizer's
  const config = hfConfig({
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: LAYERS,
    num_attention_heads: 8,
    num_key_value_heads: 8,
    vocab_size: vocab,
    tie_word_embeddings: true,
  });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  for (const f of TOKENIZER_FILES) copyFileSync(join(tinyDir, f), join(dir, f));
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => 0.02 * Math.sin(seed + i * 0.37));
  const layer = (i: number): RefTensor[] => {
    const p = `model.layers.${i}`;
    const linear = (name: string, out: number, inDim: number) => ({
      name: `${p}.${name}.weight`,
      shape: [out, inDim],
      data: values(out * inDim, i),
    });
    return [
      { name: `${p}.input_layernorm.weight`, shape: [H], data: values(H, i).map((v) => 1 + v) },
      ...["q", "k", "v", "o"].map((n) => linear(`self_attn.${n}_proj`, H, H)),
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], data: values(H, i).map((v) => 1 - v) },
      linear("mlp.gate_proj", I, H),
      linear("mlp.up_proj", I, H),
      linear("mlp.down_proj", H, I),
    ];
  };
  const shards: RefTensor[][] = Array.from({ length: SHARDS }, () => []);
  shards[0]!.push({ name: "model.embed_tokens.weight", shape: [vocab, H], data: values(vocab * H, 1) });
  shards[SHARDS - 1]!.push({ name: "model.norm.weight", shape: [H], data: values(H, 2).map((v) => 1 + v) });
  const weightMap: Record<string, string> = {};
  let fp32Bytes = 0;
  let largestBytes = 0;
  for (let s = 0; s < SHARDS; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(SHARDS).padStart(5, "0")}.safetensors`;
    // One shard's tensors at a time, so that this test process stays small too.
    const tensors = [...shards[s]!, ...Array.from({ length: LAYERS / SHARDS }, (_, j) => layer(s * (LAYERS / SHARDS) + j)).flat()];
    for (const t of tensors) {
      weightMap[t.name] = file;
      fp32Bytes += t.data.byteLength;
      largestBytes = Math.max(largestBytes, t.data.byteLength);
    }
    writeFileSync(join(dir, file), safetensorsBytes(tensors, "BF16"));
  }
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return { fp32Bytes, largestBytes };
}

/** Peak RSS (bytes, Linux) of a node process that loads the importer and, given `ckpt`, imports it into `out`. */
function peakRss(ckpt?: string, out?: string): number {
  const script = [
    `const { importHf } = await import(${JSON.stringify(IMPORTER)});`,
    ckpt ? `await importHf({ checkpoint: ${JSON.stringify(ckpt)}, out: ${JSON.stringify(out)}, externalData: true });` : "",
    // VmHWM, not resourceUsage().maxRSS: Linux carries maxRSS across exec, so it would start at this test's RSS.
    `const { readFileSync } = await import("node:fs");`,
    `process.stdout.write(String(Number(/VmHWM:\\s*(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024));`,
  ].join("\n");
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout);
}

describe("model import-hf memory", () => {
  beforeAll(async () => {
    tinyDir = await tinyModel();
  }, 120_000);

  it("holds about one tensor at a time, not the model", () => {
    const ckpt = join(tmp, "deep");
    const { fp32Bytes, largestBytes } = writeDeepCheckpoint(ckpt);
    expect(fp32Bytes).toBeGreaterThan(550 * MiB);
    const base = peakRss();
    const peak = peakRss(ckpt, join(tmp, "imported"));
    const added = peak - base;
    // Streaming needs a few copies of the largest tensor (read, widened, transposed), the graph and write buffers
    // (~50 MiB here; the whole model held in memory added ~1,300 MiB).
    expect(added, `import added ${(added / MiB).toFixed(0)} MiB to a ${(base / MiB).toFixed(0)} MiB process`).toBeLessThan(
      16 * largestBytes + 64 * MiB,
    );
    expect(added).toBeLessThan(fp32Bytes / 4);
  }, 300_000);
});
