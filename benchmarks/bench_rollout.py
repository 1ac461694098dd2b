"""Rollout speed: rlvr's KV-cache sampling loop vs `model.generate`, same model, same work.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rollout.py [--model PATH] [--hidden 128]

Without --model it builds a random-init Llama with a character tokenizer (the organism's
scale). EOS is disabled so both engines generate exactly the same number of tokens; the figure
to quote is the ratio, measured in one process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch


def tiny_llama(folder: Path, hidden: int, layers: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _tiny_lm import make_char_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=4 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eos-logit", type=float, default=-1e4,
                        help="bias on the EOS logit: -1e4 = never stop (equal work); around 2 "
                             "rows stop at scattered lengths, as real responses do")
    args = parser.parse_args()
    from rlvr.model.rollout import SamplingParams, generate, load_model

    folder = args.model or tiny_llama(Path(tempfile.mkdtemp()), args.hidden, args.layers)
    model, tokenizer = load_model(folder)
    eos = tokenizer.eos_token_id
    head = model.get_output_embeddings()
    bias = torch.zeros(head.weight.shape[0])
    bias[eos] = args.eos_logit
    head.bias = torch.nn.Parameter(bias, requires_grad=False)
    prompts = [f"Problem {i}: what is {i} + {2 * i + 1}?" for i in range(args.prompts)]
    params = SamplingParams(temperature=0.6, max_new_tokens=args.tokens, n=args.n, seed=0)
    repeated = [p for p in prompts for _ in range(args.n)]

    def run_ours() -> int:
        return sum(len(c.token_ids) for c in generate(model, tokenizer, prompts, params,
                                                      batch_size=args.batch))

    def run_hf() -> int:
        count = 0
        for i in range(0, len(repeated), args.batch):
            enc = tokenizer(repeated[i:i + args.batch], return_tensors="pt", padding=True)
            out = model.generate(**enc, do_sample=True, temperature=0.6, top_p=1.0, top_k=0,
                                 max_new_tokens=args.tokens, pad_token_id=tokenizer.pad_token_id)
            for row in out[:, enc["input_ids"].shape[1]:].tolist():
                count += row.index(eos) + 1 if eos in row else len(row)
        return count

    timings = {"ours": [], "hf": []}
    for _ in range(2):  # alternate, keep each engine's best: warm-up and noise cancel out
        for name, fn in (("ours", run_ours), ("hf", run_hf)):
            start = time.perf_counter()
            tokens = fn()
            timings[name].append((time.perf_counter() - start, tokens))
    t_ours, n_ours = min(timings["ours"])
    t_hf, n_hf = min(timings["hf"])
    print(f"model: {folder}  params: {sum(p.numel() for p in model.parameters()):,}  "
          f"torch threads: {torch.get_num_threads()}")
    print(f"useful tokens per row: {n_ours / len(repeated):.1f} of {args.tokens}")
    print(f"rlvr loop:      {n_ours} tokens in {t_ours:.2f}s = {n_ours / t_ours:,.0f} tok/s")
    print(f"model.generate: {n_hf} tokens in {t_hf:.2f}s = {n_hf / t_hf:,.0f} tok/s")
    print(f"speed-up: {(n_ours / t_ours) / (n_hf / t_hf):.2f}x")


if __name__ == "__main__":
    main()
