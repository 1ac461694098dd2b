"""Seconds per GRPO step of S seeds: one at a time (`Trainer.step` each) vs one seed group
(`rlvr.rl.lockstep.SeedGroup`, the seeds' forwards stacked), same process, same work.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed_batch.py [--seeds 5] [--steps 6]
        [--rounds 3] [--example organism-expr:1] [--json]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed_batch.py --decode-rows 16 32 64 80

Both sides build S trainers of the organism preset (outcome reward, KL to the reference,
rollouts of at most the measured token budget) from the same seeds, so each step samples the
same rollouts on both sides (tests/test_seeds.py checks the equality). The sides alternate
(A B A B ...) on fresh trainers each round; the first step of each is a warm-up and each side
keeps its best round's median seconds per step. The figure to quote is the ratio, measured in
one invocation (docs/benchmarks.md records it with the load average).

`--decode-rows` instead times one decode step of the organism (`rlvr.model.kv_cache.DecodeCache`,
best of 40) at each batch size: how the per-step cost grows with rows is what bounds the gain
of stacking seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _configs(args, seeds):
    from rlvr.rl.presets import resolve
    from rlvr.study.design import token_budget

    return [resolve("organism", overrides={
        "seed": s, "steps": args.steps, "data": {"examples": [args.example]},
        "rollout": {"max_new_tokens": token_budget()}, "eval": {"suites": []},
        "log": {"samples_every": 0}}) for s in seeds]


def one_at_a_time(args, seeds, scratch: Path) -> list[float]:
    from rlvr.rl.trainer import Trainer

    trainers = [Trainer(c, scratch / f"s{c.seed}") for c in _configs(args, seeds)]
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        for t in trainers:
            t.step()
        times.append(time.perf_counter() - t0)
    return times


def grouped(args, seeds, scratch: Path) -> list[float]:
    from rlvr.rl.lockstep import SeedGroup

    group = SeedGroup(_configs(args, seeds), [scratch / f"g{s}" for s in seeds])
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        group.step()
        times.append(time.perf_counter() - t0)
    return times


def decode_rows(rows: list[int]) -> dict[str, float]:
    import torch

    from rlvr.model.kv_cache import DecodeCache
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    model, _ = load_model(default_path(), device="cpu")
    out = {}
    with torch.no_grad():
        for batch in rows:
            prompt = torch.randint(5, 90, (batch, 12))
            cache = DecodeCache(model, batch, 90)
            cache.prefill(prompt, torch.ones_like(prompt), torch.arange(12).expand(batch, 12))
            token, position = torch.randint(5, 90, (batch,)), torch.full((batch,), 12)
            best = float("inf")
            for _ in range(40):
                cache.length = 12
                t0 = time.perf_counter()
                cache.step(token, position)
                best = min(best, time.perf_counter() - t0)
            out[str(batch)] = round(1e3 * best, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--example", default="organism-expr:1")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--decode-rows", type=int, nargs="+", default=None,
                        help="time one decode step at these batch sizes instead")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.decode_rows:
        load = os.getloadavg()[0]
        print(json.dumps({"ms_per_decode_step": decode_rows(args.decode_rows),
                          "load_avg_1min_start": round(load, 1)}))
        return
    from transformers.utils import logging

    logging.disable_progress_bar()
    seeds = list(range(args.seeds))
    load = os.getloadavg()[0]
    single, group = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            single.append(statistics.median(one_at_a_time(args, seeds, Path(tmp) / f"a{r}")[1:]))
            group.append(statistics.median(grouped(args, seeds, Path(tmp) / f"b{r}")[1:]))
    result = {"seeds": args.seeds, "example": args.example, "steps_timed": args.steps - 1,
              "rounds": args.rounds, "threads": torch.get_num_threads(),
              "one_at_a_time_s_per_step": round(min(single), 4),
              "seed_group_s_per_step": round(min(group), 4),
              "speedup": round(min(single) / min(group), 2),
              "load_avg_1min_start": round(load, 1), "load_avg_1min_end": round(os.getloadavg()[0], 1)}
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
