// `dlc-prune model tiny|import-llama2c`: build model folders in the Hugging Face / Optimum layout.
import type { Argv, CommandModule } from "yargs";
import { importLlama2c } from "../model/llama2c.js";
import { TINY_DEFAULTS, writeTinyModel } from "../model/tiny.js";
import type { LlamaConfig } from "../model/llama-config.js";
import type { WeightType } from "../model/llama-graph.js";

const DTYPE_OPTION = { choices: ["fp32", "fp16"], default: "fp32", describe: "floating-point type of the weights (fp16: like Optimum's fp16 export)" } as const;

function describe(dir: string, cfg: LlamaConfig): string {
  const D = cfg.hiddenSize / cfg.numHeads;
  const perLayer = cfg.hiddenSize * (cfg.numHeads * D * 2 + cfg.numKvHeads * D * 2) + 3 * cfg.hiddenSize * cfg.intermediateSize + 2 * cfg.hiddenSize;
  const params = cfg.numLayers * perLayer + cfg.vocabSize * cfg.hiddenSize * (cfg.tieEmbeddings ? 1 : 2) + cfg.hiddenSize;
  return `wrote ${dir}: Llama, ${cfg.numLayers} layers, hidden ${cfg.hiddenSize}, heads ${cfg.numHeads}/${cfg.numKvHeads}, vocab ${cfg.vocabSize}, ${(params / 1e6).toFixed(2)}M parameters\n`;
}

const tiny: CommandModule<object, { out: string; seed: number; layers: number; hidden: number; heads: number; "kv-heads": number; vocab: number; intermediate?: number; "max-positions": number; "tie-embeddings": boolean; "external-data"?: boolean; dtype: WeightType }> = {
  command: "tiny",
  describe: "Build a small Llama model with seeded random weights and a BPE tokenizer (tests, demo, benchmarks)",
  builder: (y: Argv) =>
    y
      .option("out", { type: "string", demandOption: true, describe: "output folder (must not exist or be empty)" })
      .option("seed", { type: "number", default: TINY_DEFAULTS.seed })
      .option("layers", { type: "number", default: TINY_DEFAULTS.layers })
      .option("hidden", { type: "number", default: TINY_DEFAULTS.hidden })
      .option("heads", { type: "number", default: TINY_DEFAULTS.heads })
      .option("kv-heads", { type: "number", default: TINY_DEFAULTS.kvHeads })
      .option("vocab", { type: "number", default: TINY_DEFAULTS.vocab })
      .option("intermediate", { type: "number", describe: "SwiGLU width (default: 2/3 of 4 x hidden, multiple of 32)" })
      .option("max-positions", { type: "number", default: TINY_DEFAULTS.maxPositions })
      .option("tie-embeddings", { type: "boolean", default: TINY_DEFAULTS.tieEmbeddings })
      .option("external-data", { type: "boolean", describe: "store weights in onnx/model.onnx_data (default: only above 512 MiB)" })
      .option("dtype", DTYPE_OPTION) as never,
  handler: async (a) => {
    const cfg = await writeTinyModel(a.out, {
      seed: a.seed,
      layers: a.layers,
      hidden: a.hidden,
      heads: a.heads,
      kvHeads: a["kv-heads"],
      vocab: a.vocab,
      intermediate: a.intermediate,
      maxPositions: a["max-positions"],
      tieEmbeddings: a["tie-embeddings"],
      externalData: a["external-data"],
      dtype: a.dtype,
    });
    process.stdout.write(describe(a.out, cfg));
  },
};

const importLlama2cCommand: CommandModule<object, { checkpoint: string; tokenizer: string; out: string; "external-data"?: boolean; dtype: WeightType }> = {
  command: "import-llama2c",
  describe: "Convert a llama2.c checkpoint (.bin, legacy v0) and its tokenizer.bin",
  builder: (y: Argv) =>
    y
      .option("checkpoint", { type: "string", demandOption: true, describe: "llama2.c model .bin" })
      .option("tokenizer", { type: "string", demandOption: true, describe: "llama2.c tokenizer .bin" })
      .option("out", { type: "string", demandOption: true, describe: "output folder (must not exist or be empty)" })
      .option("external-data", { type: "boolean", describe: "store weights in onnx/model.onnx_data" })
      .option("dtype", DTYPE_OPTION) as never,
  handler: async (a) => {
    const cfg = await importLlama2c({ checkpoint: a.checkpoint, tokenizer: a.tokenizer, out: a.out, externalData: a["external-data"], dtype: a.dtype });
    process.stdout.write(describe(a.out, cfg));
  },
};

export const modelCommand: CommandModule = {
  command: "model <command>",
  describe: "Build model folders: a seeded tiny Llama, or an imported llama2.c checkpoint",
  builder: (y: Argv) => y.command(tiny).command(importLlama2cCommand).demandCommand(1),
  handler: () => {},
};
