"""Where a demo run's seconds go: rollout, update and evaluation of one seed group.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_profile.py [--steps 6] [--json]

Builds the demo's seed group (3 seeds of the organism preset, outcome reward on a carry
problem, 16 rollouts each of at most the measured token budget; `rlvr.study.demo.plan()`'s
sizes) and times, per step, the stacked rollouts (`SeedGroup._rollouts`), the rewards and
advantages (`Trainer.prepare`) and the stacked update (`SeedGroup._update`); then one
evaluation of one seed's model on the demo's held-out items (greedy and avg@k). The figures to
quote are the shares and the ratio of one evaluation to one training step, measured in one
invocation (docs/benchmarks.md records them with the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--example", default="expr-32-97-3")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from rlvr.rl.lockstep import SeedGroup
    from rlvr.rl.problem_sets import eval_suites
    from rlvr.study.demo import condition_config, plan
    from rlvr.study.design import token_budget

    p = plan()
    configs = [condition_config(p, examples=[args.example], mode="outcome", steps=args.steps, seed=s,
                       budget=token_budget()) for s in p.seeds]
    times: dict[str, list[float]] = {"rollout": [], "prepare": [], "update": []}
    with tempfile.TemporaryDirectory() as tmp:
        group = SeedGroup(configs, [Path(tmp) / f"s{s}" for s in p.seeds])
        for step in range(1, args.steps + 1):
            t0 = time.perf_counter()
            batches = group._rollouts(step)
            t1 = time.perf_counter()
            plans = [t.prepare(b) for t, b in zip(group.trainers, batches, strict=True)]
            t2 = time.perf_counter()
            updates = group._update(plans)
            t3 = time.perf_counter()
            for t, plan_, update in zip(group.trainers, plans, updates, strict=True):
                t.finish(plan_, update, t3 - t0)
            if step > 1:  # the first step warms caches up
                times["rollout"].append(t1 - t0)
                times["prepare"].append(t2 - t1)
                times["update"].append(t3 - t2)
        suites = eval_suites(configs[0].eval)
        trainer = group.trainers[0]
        trainer.fit_evaluation(suites)
        t0 = time.perf_counter()
        trainer.evaluate(suites)
        evaluation = time.perf_counter() - t0
    step = {k: statistics.median(v) for k, v in times.items()}
    total = sum(step.values())
    result = {"seeds": len(p.seeds), "rollouts_per_seed": p.rollout_n,
              "items": sum(len(v) for v in suites.values()), "samples": p.eval_samples,
              "step_s": step, "step_total_s": total, "evaluation_s": evaluation,
              "evaluation_over_step": evaluation / total,
              "load": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for k, v in step.items():
        print(f"{k:>8}: {v:.2f} s/step ({100 * v / total:.0f}%)")
    print(f"evaluation of one seed: {evaluation:.1f} s = {evaluation / total:.1f} group steps "
          f"(load {result['load']:.1f})")


if __name__ == "__main__":
    main()
