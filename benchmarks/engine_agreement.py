"""Native vs TRL engine on the organism: training-reward curves against seed-to-seed spread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine_agreement.py --seeds 0 1 2 --steps 20

Trains the same `organism` preset run (outcome reward, one example) with `rlvr train` and
`rlvr train --engine trl` for each seed and compares the mean training reward per run
(all steps). The samplers differ (rlvr's keyed noise vs torch's), so the curves cannot match
draw for draw; the claim tested is that the engine effect is within seed-to-seed spread:
the difference of the engines' means over seeds with a 95% Welch t-interval, beside each
engine's per-seed values. Prints JSON (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(engine: str, seed: int, steps: int, example: str, folder: Path) -> list[float]:
    out = folder / f"{engine}-{seed}"
    command = [sys.executable, "-m", "rlvr", "train", "--engine", engine, "--example", example,
               "--steps", str(steps), "--seed", str(seed), "--out", str(out), "--no-progress",
               "--no-eval"]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["reward_mean"] for line in lines]


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Difference of means (a − b) and its 95% Welch t-interval."""
    from scipy import stats

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff, se = statistics.fmean(a) - statistics.fmean(b), (va + vb) ** 0.5
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se else 1.0
    half = float(stats.t.ppf(0.975, dof)) * se
    return diff, diff - half, diff + half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--example", default="organism-add:3")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("the seed-to-seed spread needs at least two seeds")
    curves: dict[str, dict[int, list[float]]] = {"native": {}, "trl": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for engine in curves:
                curves[engine][seed] = run(engine, seed, args.steps, args.example, Path(tmp))
    means = {e: [statistics.fmean(c) for c in runs.values()] for e, runs in curves.items()}
    diff, low, high = welch(means["trl"], means["native"])
    result = {
        "example": args.example, "steps": args.steps, "seeds": args.seeds,
        "mean_train_reward": {e: {"per_seed": [round(m, 4) for m in ms],
                                  "mean": round(statistics.fmean(ms), 4),
                                  "sd_over_seeds": round(statistics.stdev(ms), 4)}
                              for e, ms in means.items()},
        "trl_minus_native": {"diff": round(diff, 4), "ci95": [round(low, 4), round(high, 4)],
                             "within_noise": low <= 0 <= high},
        "curves": {e: {str(s): [round(r, 3) for r in c] for s, c in runs.items()}
                   for e, runs in curves.items()},
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
