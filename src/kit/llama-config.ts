// The Llama architecture hyper-parameters, and their Hugging Face config.json form.

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** config.json's head_dim where a checkpoint sets one (it may differ from hiddenSize / numHeads); absent: that quotient. */
  headDim?: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Multiplies the embedded tokens (Gemma's sqrt(hidden_size)); absent: 1. */
  embedScale?: number;
  /** The MLP's gate activation: Gemma's tanh-approximated GELU; absent: SiLU. */
  hiddenAct?: "gelu_pytorch_tanh";
  /** Llama 3's rotary frequency scaling (rope_type llama3); absent: unscaled. */
  ropeScaling?: Llama3RopeScaling;
  tieEmbeddings: boolean;
  bosTokenId: number;
  eosTokenId: number;
}

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export function headDim(cfg: LlamaConfig): number {
  return cfg.headDim ?? cfg.hiddenSize / cfg.numHeads;
}

/** Checks the shape constraints of the architecture; returns a problem or undefined. */
export function llamaConfigProblem(cfg: LlamaConfig): string | undefined {
  const positive: (keyof LlamaConfig)[] = [
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "numKvHeads",
    "vocabSize",
    "maxPositions",
  ];
  for (const k of positive) {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v <= 0) return `${k} must be a positive integer, got ${v}`;
  }
  if (cfg.headDim !== undefined && !(Number.isInteger(cfg.headDim) && cfg.headDim > 0))
    return `headDim must be a positive integer, got ${cfg.headDim}`;
  if (cfg.headDim === undefined && cfg.hiddenSize % cfg.numHeads !== 0)
    return `hidden size ${cfg.hiddenSize} is not a multiple of heads ${cfg.numHeads}`;
  if (headDim(cfg) % 2 !== 0) return `head dimension ${headDim(cfg)} must be even for rotary embeddings`;
  if (cfg.numHeads % cfg.numKvHeads !== 0) return `heads ${cfg.numHeads} is not a multiple of kv heads ${cfg.numKvHeads}`;
  return undefined;
}

/** config.json as transformers / transformers.js / optimum expect for LlamaForCausalLM. */
export function toHfConfigJson(cfg: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: headDim(cfg),
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxPositions,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    hidden_act: "silu",
    tie_word_embeddings: cfg.tieEmbeddings,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId,
    use_cache: true,
  };
}
