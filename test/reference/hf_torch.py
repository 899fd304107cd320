"""Independent reference for `model import-hf`: tiny random Hugging Face checkpoints saved by transformers, and
each row's mean response-token NLL computed by transformers in fp32 from the saved weights.

usage: hf_torch.py TOKENIZER_DIR ROWS_JSONL OUT_DIR  -> OUT_DIR/<variant>/ checkpoints, OUT_DIR/expected.json
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM)

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
SHAPE = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256, rms_norm_eps=1e-5)

# Llama 3.1's rotary scaling, with an original window short enough that the test rows reach the scaled band.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}

# name: (config class, model class, extra config, saved dtype, max_shard_size)
VARIANTS = {
    "llama-bf16": (LlamaConfig, LlamaForCausalLM, {}, torch.bfloat16, None),
    "llama-fp32-sharded": (LlamaConfig, LlamaForCausalLM, {"rope_theta": 5000.0}, torch.float32, "60KB"),
    "llama3-rope-fp32": (LlamaConfig, LlamaForCausalLM, {"rope_parameters": LLAMA3_ROPE}, torch.float32, None),
    "qwen2-fp32-tied": (Qwen2Config, Qwen2ForCausalLM, {"tie_word_embeddings": True, "rope_theta": 1e6}, torch.float32, None),
    "qwen2-bf16-sharded": (Qwen2Config, Qwen2ForCausalLM, {}, torch.bfloat16, "60KB"),
    "mistral-fp16": (MistralConfig, MistralForCausalLM, {}, torch.float16, None),
}


def randomize(model):
    """Random norms and biases too (transformers initializes them to 1 and 0, which would hide mistakes)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))


def save(name, tok_dir, out, vocab):
    config_cls, model_cls, extra, dtype, shard = VARIANTS[name]
    torch.manual_seed(sorted(VARIANTS).index(name))
    model = model_cls(config_cls(vocab_size=vocab, bos_token_id=1, eos_token_id=2, **SHAPE, **extra))
    randomize(model)
    path = out / name
    model.to(dtype).save_pretrained(path, **({"max_shard_size": shard} if shard else {}))
    for f in TOKENIZER_FILES:
        shutil.copy(tok_dir / f, path / f)
    return path


def response_span(tok, prompt, response):
    """dlc-prune's encoding (template none): prompt + response jointly when the prompt's ids are a prefix, else apart."""
    p = tok(prompt, add_special_tokens=True)["input_ids"]
    full = tok(prompt + response, add_special_tokens=True)["input_ids"]
    if full[: len(p)] == p:
        return full, len(p)
    return p + tok(response, add_special_tokens=False)["input_ids"], len(p)


def row_losses(path, tok, rows):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    out = []
    with torch.no_grad():
        for r in rows:
            ids, start = response_span(tok, r["prompt"], r["response"])
            logits = model(torch.tensor([ids])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            nll = [-logp[t - 1, ids[t]].item() for t in range(max(start, 1), len(ids))]
            out.append({"loss": sum(nll) / len(nll), "tokens": len(nll)})
    return out


def main():
    tok_dir, rows_path, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"))
    vocab = len(tok)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    expected = {}
    for name in VARIANTS:
        path = save(name, tok_dir, out, vocab)
        expected[name] = {"dir": str(path), "rows": row_losses(path, tok, rows)}
    (out / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
