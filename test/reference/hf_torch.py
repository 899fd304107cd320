"""Independent reference for `model import-hf`: tiny random Hugging Face checkpoints saved by transformers, and
each row's mean response-token NLL computed by transformers in fp32 from the saved weights, at every masking level
of each schedule: level k > 0 applies torch.nn.utils.prune.l1_unstructured once more (amount = interval of the
still-unpruned entries, Python's round) to every nn.Linear of the decoder blocks, the lm_head and embedding left alone.

usage: hf_torch.py TOKENIZER_DIR ROWS_JSONL OUT_DIR  -> OUT_DIR/<variant>/ checkpoints, OUT_DIR/expected.json
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from torch.nn.utils import prune
from transformers import (AutoModelForCausalLM, GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
SHAPE = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256, rms_norm_eps=1e-5)

# Llama 3.1's rotary scaling, with an original window short enough that the test rows reach the scaled band.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}

# (levels, interval) of the layer-scope l1 masking compared at every level.
SCHEDULES = [(3, 0.2), (4, 0.3)]

# name: (config class, model class, extra config, saved dtype, max_shard_size)
VARIANTS = {
    "llama-bf16": (LlamaConfig, LlamaForCausalLM, {}, torch.bfloat16, None),
    "llama-fp32-sharded": (LlamaConfig, LlamaForCausalLM, {"rope_theta": 5000.0}, torch.float32, "60KB"),
    "llama3-rope-fp32": (LlamaConfig, LlamaForCausalLM, {"rope_parameters": LLAMA3_ROPE}, torch.float32, None),
    "qwen2-fp32-tied": (Qwen2Config, Qwen2ForCausalLM, {"tie_word_embeddings": True, "rope_theta": 1e6}, torch.float32, None),
    "qwen2-bf16-sharded": (Qwen2Config, Qwen2ForCausalLM, {}, torch.bfloat16, "60KB"),
    "mistral-fp16": (MistralConfig, MistralForCausalLM, {}, torch.float16, None),
    # head_dim other than hidden_size / num_attention_heads: q_proj's output and o_proj's input are heads * head_dim.
    "llama-headdim24-fp32": (LlamaConfig, LlamaForCausalLM, {"head_dim": 24}, torch.float32, None),
    "qwen3-headdim32-fp32": (Qwen3Config, Qwen3ForCausalLM, {"head_dim": 32, "rope_theta": 1e6}, torch.float32, None),
    "qwen3-bf16-tied": (Qwen3Config, Qwen3ForCausalLM, {"head_dim": 16, "tie_word_embeddings": True}, torch.bfloat16, None),
    # Gemma: embeddings scaled by sqrt(hidden_size), norms by 1 + w, tanh GELU ("gelu" is its legacy name), tied head.
    "gemma-headdim24-fp32": (GemmaConfig, GemmaForCausalLM, {"head_dim": 24}, torch.float32, None),
    "gemma-bf16": (GemmaConfig, GemmaForCausalLM, {"head_dim": 16, "hidden_act": "gelu"}, torch.bfloat16, None),
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


def row_losses(model, encoded):
    """All rows in one batch, padded on the right: a causal model's logits at a row's own tokens ignore what follows."""
    width = max(len(ids) for ids, _ in encoded)
    batch = torch.tensor([ids + [0] * (width - len(ids)) for ids, _ in encoded])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in encoded])
    out = []
    with torch.no_grad():
        logp = torch.log_softmax(model(batch, attention_mask=mask).logits.double(), dim=-1)
        for row, (ids, start) in enumerate(encoded):
            nll = [-logp[row, t - 1, ids[t]].item() for t in range(max(start, 1), len(ids))]
            out.append({"loss": sum(nll) / len(nll), "tokens": len(nll)})
    return out


def load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def maskable(model):
    """What dlc-prune masks: the decoder blocks' projections (q/k/v/o, gate/up/down), not the lm_head or embedding."""
    return [m for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear)]


def position_ranks(m):
    """dlc-prune's documented order of m's entries: |w| ascending, ties by position in the graph's [in, out] layout."""
    w = getattr(m, "weight_orig", m.weight).detach()
    order = torch.sort(w.abs().t().flatten(), stable=True).indices
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return rank.view(w.shape[1], w.shape[0]).t().contiguous().float()


def tied_cut(m, interval):
    """Whether this level's cut in m falls between equal magnitudes (then topk's pick among them is arbitrary)."""
    w = getattr(m, "weight_orig", m.weight).detach().abs()
    rest = torch.sort(w[m.weight_mask.bool()] if hasattr(m, "weight_mask") else w.flatten()).values
    c = round(interval * len(rest))
    return 0 < c < len(rest) and rest[c - 1].item() == rest[c].item()


def level_losses(path, encoded, levels, interval, ties_by_position):
    """Each row's loss at levels 0 .. levels-1, each level pruning `interval` of what the one before left (layer scope),
    and per level how many cuts so far fell among equal magnitudes. `ties_by_position`: rank by position_ranks, so
    equal magnitudes are taken in dlc-prune's order instead of topk's."""
    model = load(path)
    per_level, tied = [], [0]
    for k in range(levels):
        if k > 0:
            tied.append(tied[-1])
            for m in maskable(model):
                tied[-1] += tied_cut(m, interval)
                scores = position_ranks(m) if ties_by_position else None
                prune.l1_unstructured(m, "weight", amount=interval, importance_scores=scores)
        per_level.append([r["loss"] for r in row_losses(model, encoded)])
    return [list(row) for row in zip(*per_level)], tied


def schedule(path, encoded, levels, interval):
    losses, tied = level_losses(path, encoded, levels, interval, False)
    # Without a tied cut the masks are the same whichever order ties take.
    by_position = level_losses(path, encoded, levels, interval, True)[0] if any(tied) else losses
    return {"levels": levels, "interval": interval, "losses": losses, "tied_cuts": tied, "losses_ties_by_position": by_position}


def main():
    torch.set_num_threads(1)  # tiny matrices: more threads only contend with the test's other processes
    tok_dir, rows_path, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"))
    vocab = len(tok)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    encoded = [response_span(tok, r["prompt"], r["response"]) for r in rows]
    expected = {}
    for name in VARIANTS:
        path = save(name, tok_dir, out, vocab)
        schedules = [schedule(path, encoded, n, x) for n, x in SCHEDULES]
        expected[name] = {"dir": str(path), "rows": row_losses(load(path), encoded), "schedules": schedules}
    (out / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
