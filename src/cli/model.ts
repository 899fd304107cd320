// `dlc-prune model tiny|import-llama2c|import-hf`: build model folders in the Hugging Face / Optimum layout.
import type { Argv, CommandModule } from "yargs";
import { parseWith } from "../config/load.js";
import { tinySchema } from "../config/schema.js";
import { HF_MODEL_TYPES, importHf } from "../kit/hf-import.js";
import { importLlama2c } from "../kit/llama2c.js";
import { headDim, type LlamaConfig } from "../kit/llama-config.js";
import type { WeightType } from "../kit/llama-graph.js";
import { writeTinyModel } from "../kit/tiny.js";
import { flagValues, withSchemaFlags, type FlagMap } from "./options.js";

const DTYPE_OPTION = {
  choices: ["fp32", "fp16"],
  default: "fp32",
  describe: "floating-point type of the weights (fp16: like Optimum's fp16 export)",
} as const;

/** The flags of `model tiny`: the keys of model.tiny in a recipe. */
const TINY_FLAGS: FlagMap = Object.fromEntries(Object.keys(tinySchema.shape).map((k) => [k.replaceAll("_", "-"), `model.tiny.${k}`]));

/** One line about the written model; `modelType` names its family: qwen2's q/k/v projections have biases, qwen3 norms q and k per head. */
function describe(dir: string, cfg: LlamaConfig, modelType = "llama"): string {
  const D = headDim(cfg);
  const qkv = cfg.numHeads * D + 2 * cfg.numKvHeads * D;
  const perLayer =
    cfg.hiddenSize * (cfg.numHeads * D * 2 + cfg.numKvHeads * D * 2) +
    3 * cfg.hiddenSize * cfg.intermediateSize +
    2 * cfg.hiddenSize +
    (modelType === "qwen2" ? qkv : 0) +
    (modelType === "qwen3" ? 2 * D : 0);
  const params = cfg.numLayers * perLayer + cfg.vocabSize * cfg.hiddenSize * (cfg.tieEmbeddings ? 1 : 2) + cfg.hiddenSize;
  return `wrote ${dir}: ${modelType}, ${cfg.numLayers} layers, hidden ${cfg.hiddenSize}, heads ${cfg.numHeads}/${cfg.numKvHeads}, vocab ${cfg.vocabSize}, ${(params / 1e6).toFixed(2)}M parameters\n`;
}

const tiny: CommandModule<object, { out: string; "external-data"?: boolean; dtype: WeightType }> = {
  command: "tiny",
  describe: "Build a small Llama model with seeded random weights and a BPE tokenizer (tests, demo, benchmarks)",
  builder: (y: Argv) =>
    withSchemaFlags(y, TINY_FLAGS)
      .option("out", { type: "string", demandOption: true, describe: "output folder (must not exist or be empty)" })
      .option("external-data", { type: "boolean", describe: "store weights in onnx/model.onnx_data (default: only above 512 MiB)" })
      .option("dtype", DTYPE_OPTION) as never,
  handler: async (a) => {
    const keys = Object.fromEntries(flagValues(a, TINY_FLAGS).map(([key, value]) => [key.slice("model.tiny.".length), value]));
    const cfg = await writeTinyModel(a.out, {
      ...parseWith(tinySchema, keys, "model tiny"),
      externalData: a["external-data"],
      dtype: a.dtype,
    });
    process.stdout.write(describe(a.out, cfg));
  },
};

const importLlama2cCommand: CommandModule<
  object,
  { checkpoint: string; tokenizer: string; out: string; "external-data"?: boolean; dtype: WeightType }
> = {
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
    const cfg = await importLlama2c({
      checkpoint: a.checkpoint,
      tokenizer: a.tokenizer,
      out: a.out,
      externalData: a["external-data"],
      dtype: a.dtype,
    });
    process.stdout.write(describe(a.out, cfg));
  },
};

const importHfCommand: CommandModule<object, { checkpoint: string; out: string; "external-data"?: boolean; dtype: WeightType }> = {
  command: "import-hf",
  describe: `Convert a Hugging Face checkpoint folder (safetensors; ${HF_MODEL_TYPES.join(", ")})`,
  builder: (y: Argv) =>
    y
      .option("checkpoint", {
        type: "string",
        demandOption: true,
        describe: "checkpoint folder: config.json, *.safetensors, tokenizer.json",
      })
      .option("out", {
        type: "string",
        demandOption: true,
        describe: "output folder (must not exist or be empty; not inside the checkpoint)",
      })
      .option("external-data", { type: "boolean", describe: "store weights in onnx/model.onnx_data (default: only above 512 MiB)" })
      .option("dtype", DTYPE_OPTION) as never,
  handler: async (a) => {
    const { config, modelType } = await importHf({
      checkpoint: a.checkpoint,
      out: a.out,
      externalData: a["external-data"],
      dtype: a.dtype,
    });
    process.stdout.write(describe(a.out, config, modelType));
  },
};

export const modelCommand: CommandModule = {
  command: "model <command>",
  describe: "Build model folders: a seeded tiny Llama, an imported llama2.c checkpoint or Hugging Face checkpoint",
  builder: (y: Argv) => y.command(tiny).command(importLlama2cCommand).command(importHfCommand).demandCommand(1),
  handler: () => {},
};
