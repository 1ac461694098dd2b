"""The C++ decode step on an fp16 cache against an fp32 one: speed, and how far the sampled
distributions move.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/half_cache.py [--json] [--rounds 20] \
        [--model PATH]

One process, one torch thread, the shipped organism unless --model:

- `speed`: the decode loop of roofline.py (`rlvr.model.decode.decode` through
  `policy.make_decoder`: R distinct 12-token prompts, `--new` tokens at temperature 1, no row
  stopping) with `RLVR_HALF_CACHE=1` (the default) and `=0`, alternating the order every round,
  at R = 16, 64 and 128. Per cache: the best and the median milliseconds per token, and the
  rounds the fp16 cache won. The machine's pace moves by ±8 % between processes; within one
  process the alternation shares it between both caches.
- `distance`: 64 rows of the model's own text (prompts of random tokens, then `--new` tokens
  it sampled on an fp32 cache) replayed through both caches, the same tokens into each: per
  row and step, the total variation between the two next-token distributions (mean, median,
  99th percentile, maximum), the largest logit difference, and how often the most likely
  token agrees. `rlvr.model.native_step.HALF_CACHE_TV` is the bound the tests hold.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from roofline import decode_loop  # this script's folder is on the path


def speed(model, rows: int, new: int, rounds: int) -> dict:
    run = decode_loop(model, rows, new)
    seconds = {"1": [], "0": []}
    for flag in seconds:  # warm-up: the build, the heap
        os.environ["RLVR_HALF_CACHE"] = flag
        run()
    for r in range(rounds):
        for flag in (("1", "0") if r % 2 == 0 else ("0", "1")):
            os.environ["RLVR_HALF_CACHE"] = flag
            t0 = time.perf_counter()
            run()
            seconds[flag].append(time.perf_counter() - t0)
    os.environ.pop("RLVR_HALF_CACHE")
    per_token = {("fp16" if flag == "1" else "fp32"): {
        "best_ms": round(1e3 * min(s) / new, 3),
        "median_ms": round(1e3 * statistics.median(s) / new, 3)} for flag, s in seconds.items()}
    ratio = statistics.median(seconds["1"]) / statistics.median(seconds["0"])
    wins = sum(a < b for a, b in zip(seconds["1"], seconds["0"], strict=True))
    return {**per_token, "fp16_won": f"{wins} of {rounds}",
            "median_ratio": round(ratio, 3),
            "load": round(os.getloadavg()[0], 2)}


def _forced(model, ids, mask, positions, tokens, flag: str):
    from rlvr.model.kv_cache import forced_logits

    os.environ["RLVR_HALF_CACHE"] = flag
    cache, logits = forced_logits(model, ids, mask, positions, tokens)
    os.environ.pop("RLVR_HALF_CACHE")
    return cache.kv[0].dtype, logits


def distance(model, new: int, seed: int = 1) -> dict:
    import torch

    from rlvr.model.kv_cache import DecodeCache

    rows, prompt = 64, 12
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, model.config.vocab_size, (rows, prompt), generator=gen)
    mask, positions = torch.ones_like(ids), torch.arange(prompt).expand(rows, prompt)
    tokens = torch.empty(rows, new, dtype=torch.long)
    os.environ["RLVR_HALF_CACHE"] = "0"
    with torch.inference_mode():  # the model's own continuations, drawn on an fp32 cache
        cache = DecodeCache(model, rows, prompt + new)
        logits, position = cache.prefill(ids, mask, positions), positions[:, -1]
        for s in range(new):
            tokens[:, s] = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
            if s + 1 < new:
                position = position + 1
                logits = cache.step(tokens[:, s], position)
    exact_dtype, exact = _forced(model, ids, mask, positions, tokens, "0")
    half_dtype, half = _forced(model, ids, mask, positions, tokens, "1")
    tv = (0.5 * (half.softmax(-1) - exact.softmax(-1)).abs().sum(-1)).flatten()
    return {"caches": [str(exact_dtype), str(half_dtype)], "rows_x_steps": int(tv.numel()),
            "tv_mean": float(f"{tv.mean():.3g}"), "tv_median": float(f"{tv.median():.3g}"),
            "tv_p99": float(f"{tv.quantile(0.99):.3g}"), "tv_max": float(f"{tv.max():.3g}"),
            "max_logit_diff": float(f"{(half - exact).abs().max():.3g}"),
            "largest_logit": float(f"{exact.abs().max():.3g}"),
            "argmax_agrees": float(f"{(half.argmax(-1) == exact.argmax(-1)).float().mean():.5f}"),
            "seed": seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--new", type=int, default=48, help="new tokens per row")
    parser.add_argument("--model", help="a model folder (default: the shipped organism)")
    args = parser.parse_args()
    if args.rounds < 1 or args.new < 2:
        parser.error("--rounds must be >= 1 and --new >= 2")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from rlvr.model import native_step
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    if native_step.step_function() is None or native_step.cache_dtype() != torch.float16:
        raise SystemExit("no fp16 cache here: the C++ decode step did not build with AVX2")
    model, _ = load_model(args.model or default_path(), device="cpu")
    result = {"speed": {str(rows): speed(model, rows, args.new, args.rounds)
                        for rows in (16, 64, 128)},
              "distance": distance(model, 96), "new": args.new, "rounds": args.rounds,
              "threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps(result))
        return
    for rows, s in result["speed"].items():
        print(f"{rows:>4} rows: fp16 {s['fp16']['best_ms']} / {s['fp16']['median_ms']} ms a token "
              f"(best / median), fp32 {s['fp32']['best_ms']} / {s['fp32']['median_ms']}; "
              f"median ratio {s['median_ratio']}, fp16 won {s['fp16_won']} rounds, "
              f"load {s['load']}")
    d = result["distance"]
    print(f"distance over {d['rows_x_steps']} rows x steps: total variation mean {d['tv_mean']}, "
          f"median {d['tv_median']}, p99 {d['tv_p99']}, max {d['tv_max']} (tests bound it by "
          f"{native_step.HALF_CACHE_TV}); largest logit difference {d['max_logit_diff']} "
          f"(logits up to {d['largest_logit']}); most likely token agrees {d['argmax_agrees']:.2%}")


if __name__ == "__main__":
    main()
