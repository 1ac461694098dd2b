"""Choose the organism preset's learning rate from training signals alone (no held-out data).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe_sweep.py [--lrs 1e-5 2e-5 4e-5 8e-5]
        [--seeds 0 1 2] [--steps 60] [--examples ...] [--out runs/recipe-sweep] [--workers 2]

Every (lr, seed, example) is an outcome-reward run of the organism preset (one PPO epoch, KL
0.001 to the reference, entropy bonus 0.001, the update guard), with no evaluation at all, on
calibration examples from the organism's *training* split (not the demo's anchor, not any
held-out suite); the seeds of one (lr, example) train as one seed group. The criterion reads
training rewards only:

- rises: for every seed and example, the mean training reward over the last 10 steps exceeds
  the mean over the first 10 by at least 0.2;
- stable: no run's 10-step moving mean of the training reward ever falls more than 0.2 below
  its own running maximum (a collapse after a rise, which is what an over-large rate does).
  A step's reward is a mean of 16 Bernoulli draws, so a 5-step window's noise alone reaches
  0.2 over 60 steps (a first version with 5 steps flagged every rate, 1e-5 included).

The chosen rate is the largest that satisfies both. Prints a markdown table (docs/training.md
keeps it) and writes results.json into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

RISE, DROP, WINDOW, EDGE = 0.2, 0.2, 10, 10


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _train(lr: float, seeds: list[int], example: str, steps: int, budget: int,
           run_dirs: list[str]) -> list[list[dict]]:
    """All seeds of one (lr, example) as one seed group (rlvr.rl.lockstep)."""
    from rlvr.rl.lockstep import train_seeds
    from rlvr.rl.presets import resolve
    from rlvr.rundir.write import read_jsonl

    configs = [resolve("organism", overrides={
        "seed": s, "steps": steps, "optim": {"lr": lr},
        "data": {"examples": [example]}, "rollout": {"max_new_tokens": budget},
        "eval": {"suites": []}, "log": {"samples_every": 0}}) for s in seeds]
    train_seeds(configs, run_dirs)
    return [list(read_jsonl(Path(d) / "metrics.jsonl")) for d in run_dirs]


def verdict(curves: list[list[float]]) -> dict:
    rises, worst_drop = [], 0.0
    for curve in curves:
        r = np.asarray(curve)
        rises.append(float(r[-EDGE:].mean() - r[:EDGE].mean()))
        smooth = np.convolve(r, np.ones(WINDOW) / WINDOW, mode="valid")
        worst_drop = max(worst_drop, float((np.maximum.accumulate(smooth) - smooth).max()))
    return {"min_rise": min(rises), "max_drop": worst_drop,
            "ok": min(rises) >= RISE and worst_drop <= DROP}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 2e-5, 4e-5, 8e-5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--examples", nargs="+", default=None,
                        help="calibration ids (default: training-split problems the shortcut fails)")
    parser.add_argument("--out", default="runs/recipe-sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true",
                        help="read the runs already in --out instead of training")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.report_only:
        raise SystemExit(f"{out} exists and is not empty; choose another --out")
    from rlvr.study.design import calibration_examples, token_budget

    examples = args.examples or calibration_examples()
    budget = token_budget()
    started = time.time()
    jobs = {(lr, e): [str(out / f"lr{lr:g}-{e}-s{s}") for s in args.seeds]
            for lr in args.lrs for e in examples}
    if args.report_only:
        from rlvr.rundir.write import read_jsonl

        records = {(lr, seed, e): list(read_jsonl(Path(d[i]) / "metrics.jsonl"))
                   for (lr, e), d in jobs.items() for i, seed in enumerate(args.seeds)}
    else:
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker) as ex:
            futures = {k: ex.submit(_train, k[0], args.seeds, k[1], args.steps, budget, d)
                       for k, d in jobs.items()}
            records = {}
            for (lr, e), f in futures.items():
                for seed, run in zip(args.seeds, f.result(), strict=True):
                    records[(lr, seed, e)] = run
    curves = {k: [m["reward_mean"] for m in run] for k, run in records.items()}
    norms = {lr: float(np.mean([m["update_norm"] for (l2, _, _), run in records.items()
                                if l2 == lr for m in run if not m["update_skipped"]]))
             for lr in args.lrs}
    rows, results = [], {}
    for lr in args.lrs:
        v = verdict([curves[(lr, s, e)] for s in args.seeds for e in examples])
        results[f"{lr:g}"] = {**v, "update_norm": norms[lr], "curves": {f"{s}:{e}": curves[(lr, s, e)]
                                              for s in args.seeds for e in examples}}
        rows.append(f"| {lr:g} | {v['min_rise']:+.2f} | {v['max_drop']:.2f} | "
                    f"{'yes' if v['ok'] else 'no'} | {norms[lr]:.4f} |")
    ok = [lr for lr in args.lrs if results[f"{lr:g}"]["ok"]]
    chosen = max(ok) if ok else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"args": vars(args), "examples": examples, "budget": budget, "chosen": chosen,
         "elapsed_s": round(time.time() - started), "lrs": results}, indent=1) + "\n")
    print(f"examples {', '.join(examples)}; seeds {args.seeds}; {args.steps} steps; "
          f"budget {budget} tokens\n")
    print("| lr | min rise (last 10 − first 10) | max drop from running max | rises stably | "
          "mean update norm |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nchosen lr: {chosen} ({time.time() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
