"""Does the historical-variance anchor beat a zero-variance or a random one? (organism, CPU)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anchor_study.py [--out runs/anchor-study]
        [--per-family 3] [--hard 2] [--history-steps 20] [--steps 20] [--eval-every 10]
        [--seeds 0 1 2] [--workers 2]

1. History: one multi-example GRPO run over a small organism pool (the first `--per-family`
   held-out problems of every family, plus `--hard` 4-digit additions the organism never
   solves: the never-solved, zero-variance examples any real pool has), logging each
   example's training accuracy per step.
2. Selection: `rlvr.evaluation.selection.rank` (population std, stable sort) → the top anchor (π1), the
   runner-up (π2), a zero-variance anchor (the last-ranked example whose score is 0, else the
   lowest) and a random anchor (seeded, from the rest).
3. 1-shot GRPO from each anchor and seed; held-out gain at step s = mean over the organism
   families of (greedy strict accuracy at s − at 0), on held-out suites drawn with another
   seed than the pool, with any pool example removed from the scoring.

Prints a markdown table (kept in docs/selection.md) and writes `results.json` into --out.
Runs `--workers` training processes at once, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

_EVAL_SEED = 1  # held-out items for scoring; the pool is drawn with seed 0


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _config(model: str, overrides: dict):
    from rlvr.rl.presets import resolve

    return resolve("organism", overrides={**overrides, "model": {"path": model}})


def _train(model: str, overrides: dict, run_dir: str) -> str:
    from rlvr.rl.loop import train

    start = time.time()
    train(_config(model, overrides), run_dir=run_dir, progress=False)
    return f"{run_dir} ({time.time() - start:.0f} s)"


def write_pool(out: Path, per_family: int, hard: int) -> list:
    from rlvr.data.pools import write_training_set
    from rlvr.organism.tasks import FAMILIES, heldout_suite, to_problem

    pool = [p for family in sorted(FAMILIES) for p in heldout_suite(family, n=per_family, seed=0)]
    rng = random.Random(0)
    # 4-digit operands: beyond the 3-digit columns the organism was pretrained on.
    pool += [to_problem("add", (rng.randint(1000, 9999), rng.randint(1000, 9999)), "hard")
             for _ in range(hard)]
    write_training_set(pool, out / "pool.jsonl", copies=1)
    return pool


def choose_anchors(history: dict, pool_ids: list[str], seed: int) -> dict:
    from rlvr.evaluation.selection import rank

    ranked = rank(history)
    top = ranked[0]
    zeros = [r for r in ranked if r.score == 0.0]
    zero = zeros[-1] if zeros else ranked[-1]
    runner_up = ranked[1]  # how much does the exact rank matter?
    rest = [i for i in pool_ids if i not in (top.index, runner_up.index, zero.index)]
    rand_id = random.Random(seed).choice(rest)
    rand = next(r for r in ranked if r.index == rand_id)
    return {"top-variance": top, "runner-up": runner_up, "zero-variance": zero, "random": rand}


def heldout_accuracy(run_dir: Path, step: int, exclude: set[str]) -> float:
    """Mean over suites of greedy strict accuracy at `step`, pool examples left out."""
    accs = []
    for path in sorted((run_dir / "eval" / f"step-{step}").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        greedy = [r for r in rows if r.get("sample", 0) == 0 and r["id"] not in exclude]
        if greedy:
            accs.append(sum(bool(r["correct_strict"]) for r in greedy) / len(greedy))
    if not accs:
        raise SystemExit(f"{run_dir} has no evaluation at step {step}")
    return statistics.fmean(accs)


def eval_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("step-")) for p in (run_dir / "eval").glob("step-*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="HF folder (default: the shipped organism)")
    parser.add_argument("--out", default="runs/anchor-study")
    parser.add_argument("--per-family", type=int, default=3)
    parser.add_argument("--hard", type=int, default=2, help="4-digit additions in the pool")
    parser.add_argument("--history-steps", type=int, default=20)
    parser.add_argument("--history-n", type=int, default=8, help="rollouts per example")
    parser.add_argument("--steps", type=int, default=20, help="1-shot training steps")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-n", type=int, default=50, help="held-out items per family")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    from rlvr.evaluation.selection import load_history, rank

    pool = write_pool(out, args.per_family, args.hard)
    pool_ids = [p.id for p in pool]
    started = time.time()
    history_overrides = {
        "seed": 0, "steps": args.history_steps,
        "data": {"train_file": str(out / "pool.jsonl"), "copies": 1},
        "rollout": {"n": args.history_n}, "eval": {"suites": []},
    }
    print(_train(args.model, history_overrides, str(out / "history")), file=sys.stderr)
    history = load_history(out / "history")
    anchors = choose_anchors(history, pool_ids, seed=0)
    jobs = {}
    for kind, anchor in anchors.items():
        for seed in args.seeds:
            jobs[(kind, seed)] = {
                "seed": seed, "steps": args.steps,
                "data": {"examples": [anchor.index], "copies": 1},
                "log": {"eval_every": args.eval_every},
                "eval": {"suites": ["organism"], "n_per_suite": args.eval_n, "samples": 0,
                         "seed": _EVAL_SEED},
            }
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"),
                             initializer=_init_worker) as ex:
        futures = [ex.submit(_train, args.model, o, str(out / f"{kind}-s{seed}"))
                   for (kind, seed), o in jobs.items()]
        for f in futures:
            print(f.result(), file=sys.stderr)
    report(out, anchors, args, set(pool_ids), rank(history), time.time() - started)


def report(out: Path, anchors: dict, args, exclude: set[str], ranked: list,
           elapsed: float) -> None:
    results = {"args": vars(args), "elapsed_s": round(elapsed),
               "ranking": [r.to_dict() for r in ranked], "anchors": {}}
    steps = [s for s in eval_steps(out / f"top-variance-s{args.seeds[0]}") if s > 0]
    seeds = "/".join(f"s{s}" for s in args.seeds)
    lines = ["| anchor | example | hist. std | hist. acc | base acc | " +
             " | ".join(f"gain @{s} ({seeds})" for s in steps) + " | mean gain @" +
             str(steps[-1]) + " |",
             "|---|---|---|---|---|" + "---|" * (len(steps) + 1)]
    for kind, anchor in anchors.items():
        runs = [out / f"{kind}-s{seed}" for seed in args.seeds]
        base = [heldout_accuracy(run, 0, exclude) for run in runs]
        gains = {s: [heldout_accuracy(run, s, exclude) - b
                     for run, b in zip(runs, base, strict=True)] for s in steps}
        results["anchors"][kind] = {"example": anchor.index, "score": anchor.score,
                                    "mean_accuracy": anchor.mean_accuracy, "base": base,
                                    "gains": {str(s): g for s, g in gains.items()}}
        cells = " | ".join("/".join(f"{100 * g:+.0f}" for g in gains[s]) for s in steps)
        lines.append(f"| {kind} | `{anchor.index}` | {anchor.score:.3f} | "
                     f"{anchor.mean_accuracy:.2f} | {100 * statistics.fmean(base):.1f} | "
                     f"{cells} | {100 * statistics.fmean(gains[steps[-1]]):+.1f} |")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))
    print(f"\n(accuracies and gains in points; {elapsed:.0f} s in all)")


if __name__ == "__main__":
    main()
