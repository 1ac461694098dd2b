"""rlvr.model.fast_forward vs the Hugging Face forward, per workload, interleaved in one process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fast_lm.py [--model PATH] [--rounds 5] [--json]

Three workloads on the shipped organism (or --model), each run alternately with the fast path
on and off (RLVR_FAST_LM=0), best round kept, so load from other processes falls on both alike:
  - rollout: `rlvr.model.rollout.generate`, one prompt × 16 samples of ≤ 64 tokens at temperature 1
    (the GRPO benchmark's step), milliseconds per call and per decode step;
  - score: forward + backward of a (16, 86) left-padded batch, logits of the last 65 positions
    (the trainer's `_logprobs` on one group);
  - pretrain: one optimizer step of the organism's default build config (batch 64,
    length-bucketed batches from its corpus), as `rlvr organism build` runs it.
Prints the ratios HF / fast (> 1: the fast path is faster) and, with --json, one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _toggle(fast: bool) -> None:
    os.environ["RLVR_FAST_LM"] = "1" if fast else "0"


def rollout_timer(model_path: str):
    from rlvr.model.rollout import SamplingParams, generate, load_model

    model, tokenizer = load_model(model_path, device="cpu")
    params = SamplingParams(temperature=1.0, max_new_tokens=64, n=16, seed=0)
    prompt = "Q: What is 37 + 48?\nA:"

    def run() -> float:
        start = time.perf_counter()
        generate(model, tokenizer, [prompt], params, batch_size=16)
        return time.perf_counter() - start
    return run


def score_timer(model_path: str):
    from rlvr.model import fast_forward as fast_lm
    from rlvr.model.rollout import load_model

    model, _ = load_model(model_path, device="cpu")
    model.train()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (16, 86), generator=gen)
    mask = torch.ones_like(ids)
    mask[:, :2] = 0  # left padding, as prompts of different lengths give
    lengths = torch.randint(10, 65, (16,), generator=gen)
    mask[torch.arange(86)[None] >= (22 + lengths)[:, None]] = 0  # right padding after EOS
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    def run() -> float:
        start = time.perf_counter()
        if fast_lm.supports(model):
            logits = fast_lm.logits(model, ids, mask, positions, 65)
        else:
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=65).logits
        logits.float().log_softmax(-1).amax(-1).sum().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start
    return run


def pretrain_timer(steps: int):
    from rlvr.model import fast_forward as fast_lm
    from rlvr.organism.config import load_config
    from rlvr.organism.corpus import build_corpus
    from rlvr.organism.model import make_model
    from rlvr.organism.pretrain import _batch, _Sampler

    config = load_config(None)
    corpus = build_corpus(dataclasses.replace(config.corpus, size=min(config.corpus.size, 5000)),
                          0)
    torch.manual_seed(0)
    model = make_model(config.model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.train.lr)
    sampler = _Sampler(corpus, 0)
    # Batch lengths vary a lot (length-bucketed): both variants get the same batches.
    batches = [_batch(corpus, sampler(config.train.batch_size)) for _ in range(steps)]
    queue: list = []

    def run() -> float:
        if not queue:
            queue.extend(batches)
        inputs, targets, mask = queue.pop()
        start = time.perf_counter()
        logits = fast_lm.forward_logits(model, inputs)
        loss = (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * mask).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Llama/Qwen2 folder (default: the shipped organism)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pretrain-steps", type=int, default=12, help="timed steps per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from rlvr.organism import default_path

    path = args.model or str(default_path())
    timers = {"rollout": (rollout_timer(path), 3), "score": (score_timer(path), 3),
              "pretrain": (pretrain_timer(args.pretrain_steps + 1), args.pretrain_steps)}
    best = {(name, fast): float("inf") for name in timers for fast in (True, False)}
    loads = []
    for _ in range(args.rounds):
        for name, (run, reps) in timers.items():
            for fast in (True, False):
                _toggle(fast)
                run()  # warm-up (first decode, changed shapes)
                # Mean over the round's repetitions (the same inputs each round), best round.
                best[name, fast] = min(best[name, fast], sum(run() for _ in range(reps)) / reps)
        loads.append(os.getloadavg()[0])
    os.environ.pop("RLVR_FAST_LM")
    result = {"model": path, "rounds": args.rounds, "threads": torch.get_num_threads(),
              "load_avg": [round(x, 2) for x in loads]}
    for name in timers:
        fast, slow = best[name, True], best[name, False]
        result[f"{name}_fast_ms"] = round(fast * 1e3, 2)
        result[f"{name}_hf_ms"] = round(slow * 1e3, 2)
        result[f"{name}_speedup"] = round(slow / fast, 2)
        print(f"{name:9s} fast {fast * 1e3:8.1f} ms   HF {slow * 1e3:8.1f} ms   "
              f"HF/fast {slow / fast:.2f}x")
    print(f"load average per round: {result['load_avg']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
