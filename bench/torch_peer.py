"""The PyTorch peer of `BENCH_SECTIONS=shapes` (bench/shapes.ts), run with TORCH_PYTHON (torch CPU, transformers 5).

  torch_peer.py make SHAPE TOKENIZER_DIR OUT_DIR
      a random-weight checkpoint of a real model's shape (config + from_config, fixed seed), saved by transformers
      in bf16 safetensors, with the kit tokenizer's files copied beside it
  torch_peer.py score CHECKPOINT ENCODED_JSON THREADS OUT_JSON
      each row's mean response NLL at every level in HF transformers fp32, on dlc-prune's token ids and response
      spans (ENCODED_JSON: {"levels", "interval", "batch_tokens", "rows": [{"row", "ids", "spans"}]}), by two runners. Level k > 0
      applies torch.nn.utils.prune.l1_unstructured once more (amount = interval of the still-unpruned entries) to the
      decoder blocks' nn.Linear weights (q/k/v/o, gate/up/down; not lm_head or the embedding). "loop": one row
      at a time with labels (-100 outside the response), as the paper's code; "batched": right-padded batches of
      length-sorted rows under batch_tokens token slots, per-row losses from the logits.
"""
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils import prune

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

SHAPES = {
    # Qwen/Qwen2.5-0.5B's config.json
    "qwen2.5-0.5b": ("Qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                   num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                                   rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                                   use_sliding_window=False, max_window_layers=21)),
    # TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T's config.json
    "tinyllama-1.1b": ("Llama", dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                                     num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048,
                                     rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)),
}


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(shape, tok_dir, out):
    import transformers
    family, kw = SHAPES[shape]
    config = getattr(transformers, f"{family}Config")(bos_token_id=1, eos_token_id=2, **kw)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(torch.bfloat16)
    try:
        model.save_pretrained(out, safe_serialization=True)
    except TypeError:  # transformers 5 always writes safetensors and may not take the flag
        model.save_pretrained(out)
    for f in TOKENIZER_FILES:
        if (tok_dir / f).exists():
            shutil.copy(tok_dir / f, out / f)


def tie_ordered(m):
    """Importance scores giving dlc-prune's order of m's entries: |w| ascending, ties by position in the graph's
    [in, out] layout (bf16 weights tie often, and topk would pick among equal magnitudes differently). For weights
    that bf16 holds exactly: |w|'s top 16 bits then the position, one exact float64 key (no sort needed)."""
    w = getattr(m, "weight_orig", m.weight).detach()
    bits = w.abs().view(torch.int32).long()
    assert not (bits & 0xFFFF).any(), "tie_ordered needs bf16 values"
    out, inp = w.shape
    position = torch.arange(inp).view(1, inp) * out + torch.arange(out).view(out, 1)
    return ((bits >> 16) * 2**32 + position).double()


def prune_once(model, interval):
    # The keys are computed again for each matrix at each level (from weight_orig, so they are the same each time):
    # kept for every matrix, they would take 8 bytes a maskable weight (7.7 GB at 1.1B parameters).
    for m in model.model.layers.modules():
        if isinstance(m, torch.nn.Linear):
            prune.l1_unstructured(m, "weight", amount=interval, importance_scores=tie_ordered(m))


def labels_of(ids, spans):
    labels = torch.full((len(ids),), -100, dtype=torch.long)
    for a, b in spans:
        labels[a:b] = torch.tensor(ids[a:b])
    return labels


def loop_losses(model, rows, _):
    out = []
    for r in rows:
        ids = torch.tensor([r["ids"]])
        out.append(model(input_ids=ids, labels=labels_of(r["ids"], r["spans"])[None]).loss.item())
    return out


def batched_losses(model, rows, batch_tokens):
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["ids"]))
    out = [0.0] * len(rows)
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j + 1 - i) * len(rows[order[j]]["ids"]) <= batch_tokens:
            j += 1
        batch = [rows[k] for k in order[i:j]]
        T = max(len(r["ids"]) for r in batch)
        ids = torch.zeros((len(batch), T), dtype=torch.long)
        mask = torch.zeros((len(batch), T), dtype=torch.long)
        labels = torch.full((len(batch), T), -100, dtype=torch.long)
        for b, r in enumerate(batch):
            ids[b, : len(r["ids"])] = torch.tensor(r["ids"])
            mask[b, : len(r["ids"])] = 1
            labels[b, : len(r["ids"])] = labels_of(r["ids"], r["spans"])
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
        del logits
        per_row = nll.sum(1) / (target != -100).sum(1)
        for b, k in enumerate(order[i:j]):
            out[k] = per_row[b].item()
        i = j
    return out


def score(ckpt, encoded_path, threads, out_path):
    """Both runners in one process (loading and masking once, timed apart): the loop, then the batches, per level."""
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    spec = json.loads(Path(encoded_path).read_text())
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    load = time.perf_counter() - t0
    levels = []
    with torch.no_grad():
        for k in range(spec["levels"]):
            level = {}
            t = time.perf_counter()
            if k > 0:
                prune_once(model, spec["interval"])
            level["mask"] = time.perf_counter() - t
            for mode, run in (("loop", loop_losses), ("batched", batched_losses)):
                t = time.perf_counter()
                level[mode] = {"losses": run(model, spec["rows"], spec["batch_tokens"])}
                level[mode]["pass"] = time.perf_counter() - t
                level[mode]["maxRssMiB"] = max_rss_mib()
            levels.append(level)
            print(f"peer: level {k} done: {json.dumps({m: v if not isinstance(v, dict) else v['pass'] for m, v in level.items()})}",
                  file=sys.stderr, flush=True)
    result = {"load": load, "total": time.perf_counter() - t0, "levels": levels, "maxRssMiB": max_rss_mib(), "threads": threads}
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        score(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
