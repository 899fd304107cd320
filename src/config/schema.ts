// The single source of truth for every option: its type, default and help text. YAML recipes, CLI flags,
// `dlc-prune config keys` and the README's option table all come from here.
import { z } from "zod";

// The choices of the options that other modules name too (their types derive from these).
export const FORMATS = ["auto", "alpaca", "prompt_response", "sharegpt", "messages"] as const;
export const TEMPLATES = ["auto", "alpaca", "none", "chat"] as const;
export const ON_ERROR = ["fail", "skip"] as const;
export const SCOPES = ["layer", "global"] as const;
export const METHODS = ["l1", "random"] as const;
export const DEVICES = ["auto", "cpu", "cuda"] as const;
export const STRATEGIES = ["flexrand", "random", "easy", "hard"] as const;
export const TRUNCATED = ["keep", "drop"] as const;
/** The scores a selection can rank by: DLC, the unmasked level's loss (perplexity filtering), IFD. */
export const RANKED_BY = ["dlc", "loss0", "ifd"] as const;
/** The flags of the scores file select.exclude can drop rows by (src/contract/flags). */
export const EXCLUDE_FLAGS = ["outliers", "duplicates", "duplicate_pairs"] as const;
const excludeRule = z.union([
  z.enum(EXCLUDE_FLAGS),
  z
    .object({ score: z.enum(RANKED_BY), above: z.number().optional(), below: z.number().optional() })
    .strict()
    .refine((r) => r.above !== undefined || r.below !== undefined, "give above, below or both"),
]);
export type ExcludeRule = z.infer<typeof excludeRule>;
/** The keys that hold file paths (score.merge: a list of them, globs allowed). */
export const PATH_KEYS = ["data.path", "model.path", "model.cache", "score.out", "score.merge", "select.out_dir"] as const;

export const PRESETS = {
  // The paper's LLM code: per-matrix magnitude masking, 3 levels of 20 % (applied cumulatively here).
  "paper-llm": { scope: "layer", interval: 0.2, levels: 3 },
  // The paper's image-benchmark code: global magnitude masking, 50 levels of 2 %.
  "paper-image": { scope: "global", interval: 0.02, levels: 50 },
} as const;

export const fieldsSchema = z
  .object({
    instruction: z.string().default("instruction").describe("alpaca: the instruction field"),
    input: z.string().default("input").describe("alpaca: the optional input/context field"),
    output: z.string().default("output").describe("alpaca: the response field"),
    prompt: z.string().default("prompt").describe("prompt_response: the prompt field (auto-detect also tries question, query)"),
    response: z
      .string()
      .default("response")
      .describe("prompt_response: the response field (auto-detect also tries answer, completion, output)"),
    conversations: z.string().default("conversations").describe("sharegpt: the list of {from, value} turns"),
    messages: z.string().default("messages").describe("messages: the list of {role, content} turns"),
    id: z.string().nullable().default(null).describe("a field copied to the scores file's `id` column"),
    group: z.string().nullable().default(null).describe("a field whose values the report shows composition by (e.g. source, category)"),
  })
  .strict();

/** The demo's tiny random model (`dlc-prune model tiny`): its options, here and as the command's flags. */
export const tinySchema = z
  .object({
    seed: z.number().int().default(0).describe("seed of the random weights and of the tokenizer's training text"),
    layers: z.number().int().positive().default(2).describe("decoder blocks"),
    hidden: z.number().int().positive().default(64).describe("hidden size"),
    heads: z.number().int().positive().default(4).describe("attention heads"),
    kv_heads: z.number().int().positive().default(2).describe("key/value heads (grouped-query attention)"),
    vocab: z.number().int().positive().default(512).describe("vocabulary size"),
    intermediate: z.number().int().positive().optional().describe("SwiGLU width (default: 2/3 of 4 x hidden, a multiple of 32)"),
    max_positions: z.number().int().positive().default(512).describe("longest sequence"),
    tie_embeddings: z.boolean().default(false).describe("LM head shares the embedding matrix"),
  })
  .strict();

export const configSchema = z
  .object({
    data: z
      .object({
        path: z.string().min(1).describe("input rows: .jsonl, .json (an array of objects) or .parquet"),
        format: z.enum(FORMATS).default("auto").describe("row format; auto looks at the first row's fields"),
        fields: fieldsSchema.prefault({}).describe("field names of the formats"),
        on_error: z
          .enum(ON_ERROR)
          .default("fail")
          .describe("a malformed row stops the run (fail) or is kept unscored with its reason (skip)"),
      })
      .strict()
      .prefault({} as never),
    model: z
      .object({
        path: z
          .string()
          .min(1)
          .optional()
          .describe(
            "model folder (needed to score): a Hugging Face checkpoint (config.json, *.safetensors, tokenizer.json, tokenizer_config.json), converted once into model.cache, or an ONNX export (config.json, tokenizer files, onnx/model.onnx)",
          ),
        cache: z
          .string()
          .min(1)
          .optional()
          .describe(
            "where a checkpoint named by model.path is converted for scoring, a folder per checkpoint (default: models/ beside score.out)",
          ),
        dtype: z
          .enum(["fp32", "fp16"])
          .default("fp32")
          .describe("the converted weights' type when model.path is a checkpoint (bf16 is widened): fp32, or fp16 (half the memory)"),
        tiny: tinySchema.optional().describe("build a tiny random model (`dlc-prune model tiny`) at `path` on first use; demo only"),
      })
      .strict()
      .prefault({} as never),
    template: z
      .enum(TEMPLATES)
      .default("auto")
      .describe(
        "prompt rendering: alpaca (stanford_alpaca's prompt), none (fields as they are), chat (the tokenizer's chat template); auto: chat for sharegpt/messages, alpaca for alpaca, none for prompt_response",
      ),
    score: z
      .object({
        preset: z
          .enum(Object.keys(PRESETS) as [keyof typeof PRESETS])
          .nullable()
          .default(null)
          .describe("masking preset: paper-llm (layer, 0.2, 3) or paper-image (global, 0.02, 50); explicit keys win"),
        levels: z.number().int().min(1).default(3).describe("masking levels including the unmasked level 0"),
        interval: z.number().gt(0).lt(1).default(0.2).describe("share of the still-unmasked weights masked at each further level"),
        scope: z
          .enum(SCOPES)
          .default("layer")
          .describe("layer: each matrix ranked separately; global: ranked across all maskable matrices"),
        method: z.enum(METHODS).default("l1").describe("l1: smallest |w| first; random: a seeded random order"),
        include: z.array(z.string()).default([]).describe("glob patterns of initializer names to mask in addition (e.g. the LM head)"),
        exclude: z.array(z.string()).default([]).describe("glob patterns of initializer names never to mask"),
        batch_tokens: z
          .number()
          .int()
          .positive()
          .default(2048)
          .describe(
            "token budget of a batch (rows x padded length); 2048 suits CPUs (bigger batches fall out of cache), raise it on a GPU",
          ),
        block_rows: z
          .number()
          .int()
          .positive()
          .default(1024)
          .describe(
            "rows per block: batches are packed within blocks of this many consecutive rows, and shard I of N tokenizes and scores the blocks k with k mod N = I (smaller: shards share work more evenly; larger: less padding)",
          ),
        max_tokens: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(null)
          .describe("longest sequence scored; default: the model's window (config.json max_position_embeddings, n_positions or n_ctx)"),
        ifd: z
          .boolean()
          .default(false)
          .describe(
            "also compute IFD (Instruction-Following Difficulty: loss(response | prompt) / loss(response alone)), one more unmasked pass over the responses alone; select.by can rank by it",
          ),
        refine: z
          .enum(["none", "boundary"])
          .default("none")
          .describe(
            'none: exact DLC for every row; boundary: all levels only for the rows near a boundary the selection needs (FlexRand\'s split, top-K cuts), an estimate for the rest (README "Cheaper DLC")',
          ),
        refine_sample: z
          .number()
          .gt(0)
          .lte(1)
          .default(0.05)
          .describe("refine: boundary: share of the rows scored at every level to calibrate the estimates (at least 50 rows)"),
        refine_confidence: z
          .number()
          .gt(0.5)
          .lte(1)
          .default(0.99999)
          .describe(
            "refine: boundary: a row settles when its estimate is on one side of every boundary with this probability (1: every row runs every level)",
          ),
        outlier_k: z
          .number()
          .gt(0)
          .default(3.5)
          .describe(
            "a scored row is flagged outlier when its DLC or loss0 is more than outlier_k x 1.4826 x MAD from the median (3.5: Iglewicz and Hoaglin); changing it recomputes the flags, not the scores",
          ),
        truncated: z
          .enum(TRUNCATED)
          .default("keep")
          .describe(
            "a row longer than max_tokens: keep (scored on the tokens that fit, status truncated) or drop (unscored, status too-long)",
          ),
        device: z.enum(DEVICES).default("auto").describe("auto: CUDA when onnxruntime's CUDA provider loads, else CPU"),
        threads: z
          .number()
          .int()
          .min(0)
          .max(1024, "at most 1024 threads")
          .default(0)
          .describe("onnxruntime intra-op threads (at most 1024); 0: the machine's cores"),
        seed: z.number().int().default(0).describe("seed of the random masking method"),
        out: z.string().min(1).default("out/scores.arrow").describe("the scores file (Arrow IPC)"),
        checkpoint_seconds: z.number().positive().default(30).describe("how often progress is saved for resume"),
        shard: z
          .string()
          .nullable()
          .default(null)
          .describe(
            'score one shard "I/N" of the rows (written to <out>.shard-I-of-N.arrow); default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set',
          ),
        shards: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(null)
          .describe(
            "the number of shards of a Slurm array (with SLURM_ARRAY_TASK_ID) or of a Kubernetes Indexed Job (its completions, with JOB_COMPLETION_INDEX)",
          ),
        merge: z.array(z.string()).default([]).describe("run: merge these shard files (globs allowed) into `out` instead of scoring"),
      })
      .strict()
      .prefault({}),
    select: z
      .object({
        ratios: z
          .array(z.number().gt(0, "a keep ratio must be in (0, 1]").lte(1, "a keep ratio must be in (0, 1]"))
          .min(1)
          .refine((r) => new Set(r).size === r.length, "each ratio once")
          .default([0.3, 0.5])
          .describe("keep ratios, each in (0, 1]"),
        strategy: z
          .enum(STRATEGIES)
          .default("flexrand")
          .describe("flexrand: random mix of an easy and a hard interval; easy/hard: top-K by the score; random: ignores scores"),
        strategies: z
          .array(z.union([z.enum(STRATEGIES), z.object({ strategy: z.enum(STRATEGIES), by: z.enum(RANKED_BY).optional() }).strict()]))
          .min(1)
          .nullable()
          .default(null)
          .describe(
            "several selections side by side, each in its own folders: names (flexrand, random, easy, hard) or {strategy, by}; default: [strategy]",
          ),
        by: z
          .enum(RANKED_BY)
          .default("dlc")
          .describe(
            "the score the strategies rank by: dlc, loss0 (the unmasked model's loss: perplexity filtering) or ifd (needs score.ifd)",
          ),
        split: z
          .number()
          .gt(0, "the split must be in (0, 1)")
          .lt(1, "the split must be in (0, 1)")
          .default(0.5)
          .describe("flexrand: share of rows in the easy interval"),
        seed: z.number().int().default(0).describe("seed of the selection draws"),
        stratify: z.string().nullable().default(null).describe("a field: select within each of its groups"),
        nested: z.boolean().default(true).describe("smaller ratios keep subsets of larger ones (one permutation per interval)"),
        exclude: z
          .array(excludeRule)
          .default([])
          .describe(
            "rows dropped before every selection, into excluded.parquet with the reason: outliers, duplicates (a response an earlier row has; one row of each response stays), duplicate_pairs (prompt and response too), {score, above, below} (e.g. {score: ifd, above: 1}); the ratios are then of the rows left",
          ),
        unscored: z
          .enum(["drop", "keep"])
          .default("drop")
          .describe("rows without a DLC score (listed in unscored.jsonl) are dropped or kept in every output"),
        out_dir: z
          .string()
          .min(1)
          .default("out")
          .describe("where <selection>-<ratio>/train.parquet, unscored.jsonl, manifest.json and the report go"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ScoreConfig = Config["score"];
export type SelectConfig = Config["select"];
/** What decides the selections a run makes: the strategies, the score they rank by, the groups they draw within. */
export type SelectionsConfig = Pick<SelectConfig, "strategy" | "strategies" | "by" | "stratify" | "exclude">;
export type Fields = Config["data"]["fields"];
export type TinyConfig = z.infer<typeof tinySchema>;
