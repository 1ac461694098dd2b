"""`rlvr demo`: the whole study on the shipped organism, end to end, on a 2-core CPU.

1. History: a short multi-example outcome-reward run over a small pool of organism problems.
2. Anchor: the example whose training accuracy varied most in that history (`rlvr.selection`,
   the paper's historical-variance score).
3. Ablations from that anchor: outcome, format-only, entropy-only, random reward, guessable and
   unguessable wrong label. Two training processes run side by side with one torch thread
   each (on two cores that is faster than one process with two threads). Each run evaluates
   the model on the organism's held-out suites at step 0 (the base), during and after training.
4. The report (`rlvr.analysis`): HTML page, claims.json (the claims checklist) and the
   decomposition table on the terminal.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.ablations import CONDITIONS
from rlvr.errors import UserError

__all__ = ["ABLATIONS", "DemoPlan", "DemoResult", "plan", "run_demo"]

# (run name, reward.mode, wrong_label_kind) of every condition in the registry, in its order
ABLATIONS = tuple((c.name, c.reward_mode, c.wrong_label_kind) for c in CONDITIONS)


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of the demo; `plan(quick)` gives the two shipped ones."""

    pool: tuple[str, ...]  # history examples (organism ids)
    history_steps: int
    steps: int  # per ablation
    eval_every: int
    n_per_suite: int
    eval_samples: int
    rollout_n: int
    max_new_tokens: int
    window: int  # saturation window for the report
    threshold: float  # saturation threshold for the report
    suites: tuple[str, ...] = ("organism",)
    extra: dict[str, Any] = field(default_factory=dict)


def plan(quick: bool = False) -> DemoPlan:
    if quick:
        # CI: every stage runs, on sizes that only check the plumbing.
        return DemoPlan(pool=tuple(f"organism-add:{i}" for i in range(3)), history_steps=2,
                        steps=3, eval_every=0, n_per_suite=6, eval_samples=0, rollout_n=4,
                        max_new_tokens=24, window=1, threshold=0.95)
    # The organism preset's 60 steps. Training accuracy is measured on 16 samples at
    # temperature 1, so "saturated" is ≥ 13 of 16 right for 3 logged steps (the report's
    # default 0.95 would need 16 of 16 every time). The pool is `expr` problems, which the
    # carry-free guess almost never solves: an add pool lets variance pick a problem the guess
    # answers (or misses by one digit), and GRPO then reinforces the guess, not the working
    # (docs/analysis.md, "Which anchor").
    return DemoPlan(pool=tuple(f"organism-expr:{i}" for i in range(6)), history_steps=6,
                    steps=60, eval_every=15, n_per_suite=30, eval_samples=0, rollout_n=16,
                    max_new_tokens=64, window=3, threshold=0.8)


@dataclass(frozen=True)
class DemoResult:
    out: Path
    anchor: str
    runs: tuple[Path, ...]
    report: Path
    markdown: str
    seconds: float


def _config(p: DemoPlan, *, examples: list[str], mode: str, steps: int, seed: int,
            model: str = "", label: str | None = None, kind: str | None = None,
            evaluate: bool = True):
    from rlvr.rl.config import resolve

    overrides: dict[str, Any] = {
        "seed": seed, "steps": steps, "model": {"path": model},
        "data": {"examples": examples},
        "reward": {"mode": mode, **({"label": label} if label else {}),
                   **({"wrong_label_kind": kind} if kind else {})},
        "rollout": {"n": p.rollout_n, "max_new_tokens": p.max_new_tokens},
        "log": {"eval_every": p.eval_every, "save_every": 0, "samples_every": 0},
        "eval": {"suites": list(p.suites) if evaluate else [], "n_per_suite": p.n_per_suite,
                 "samples": p.eval_samples},
        **p.extra,
    }
    return resolve("organism", overrides=overrides)


def _quiet() -> None:
    """No per-load progress bars from transformers: the demo prints its own progress."""
    from transformers.utils import logging

    from rlvr.progress import quiet_third_party

    quiet_third_party()
    logging.set_verbosity_error()


def _train_one(job: tuple[Any, str]) -> str:
    """Worker body: one training run with one torch thread."""
    import torch

    config, run_dir = job
    torch.set_num_threads(1)
    _quiet()
    from rlvr.rl.trainer import train

    train(config, run_dir=run_dir, progress=False)
    return run_dir


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


def _select_anchor(history_dir: Path) -> tuple[str, list]:
    from rlvr.selection import choose, load_history, rank

    ranked = rank(load_history(history_dir), score="variance")
    return choose(ranked, top=1)[0].index, ranked


def _wrong_labels(anchor: str, seed: int) -> dict[str, str]:
    from rlvr.rewards import make_wrong_label
    from rlvr.rl.examples import organism_problem

    gold = organism_problem(anchor).answer
    return {kind: make_wrong_label(gold, kind, seed) for kind in ("guessable", "unguessable")}


def _run_parallel(jobs: list[tuple[Any, Path]], workers: int, steps: int) -> None:
    """Train every (config, run_dir) with `workers` processes; the first failure is raised."""
    from rlvr.progress import bar

    context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
    # The workers start with Ctrl-C ignored (an ignored signal stays ignored in a child): the
    # terminal's SIGINT reaches the whole process group, and only this process should answer
    # it, by terminating the pool (`with` does) instead of each worker printing a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, initializer=_one_thread)
    finally:
        signal.signal(signal.SIGINT, previous)
    runs = [run for _, run in jobs]
    with pool, bar("ablation steps", steps * len(jobs), keep=True) as advance:
        pending = [pool.apply_async(_train_one, ((cfg, str(run)),)) for cfg, run in jobs]
        shown = 0
        while pending:
            pending[0].wait(0.5)
            for result in [r for r in pending if r.ready()]:
                result.get()  # re-raises a worker's UserError or bug with its message
                pending.remove(result)
            # The workers log one metrics line per step: count them for the bar.
            done = sum(_lines(run / "metrics.jsonl") for run in runs)
            advance(done - shown, info=f"{len(jobs) - len(pending)}/{len(jobs)} runs done")
            shown = done


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run_demo(out: str | Path = "runs/demo", *, quick: bool = False, seed: int = 0,
             workers: int = 2, model: str | Path | None = None, console=None) -> DemoResult:
    """Run the whole study into `out`; `model` defaults to the shipped organism."""
    from rich.console import Console

    from rlvr.runs import fresh_run_dir

    console = console or Console(stderr=True)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    # Refuses a non-empty folder (a demo never overwrites results); a demo that does not
    # finish leaves none (it has no resume).
    with fresh_run_dir(out) as out:
        return _run_demo(out, quick=quick, seed=seed, workers=workers, model=model,
                         console=console)


def _run_demo(out: Path, *, quick: bool, seed: int, workers: int, model, console) -> DemoResult:
    from rlvr.analysis.report import render_markdown, write_report
    from rlvr.analysis.study import analyze

    started = time.perf_counter()
    p = plan(quick)
    model = "" if model is None else str(model)

    console.print(f"[bold]1/4[/] history: {len(p.pool)} organism problems × "
                  f"{p.history_steps} steps (outcome reward)")
    history = out / "history"
    from rlvr.rl.trainer import train

    _quiet()
    train(_config(p, examples=list(p.pool), mode="outcome", steps=p.history_steps, seed=seed,
                  model=model, evaluate=False), run_dir=history, progress=True)
    anchor, ranked = _select_anchor(history)
    console.print(f"[bold]2/4[/] anchor by historical variance: {anchor} "
                  f"(score {ranked[0].score:.3f}, mean train acc {ranked[0].mean_accuracy:.2f})")

    labels = _wrong_labels(anchor, seed)
    jobs = [(_config(p, examples=[anchor], mode=mode, steps=p.steps, seed=seed, model=model,
                     label=labels.get(kind) if kind else None, kind=kind), out / name)
            for name, mode, kind in ABLATIONS]
    console.print(f"[bold]3/4[/] {len(jobs)} ablations × {p.steps} steps, {workers} at a time")
    _run_parallel(jobs, workers, p.steps)

    console.print("[bold]4/4[/] report")
    analysis = analyze([run for _, run in jobs], threshold=p.threshold, window=p.window)
    report = out / "report.html"
    write_report(analysis, report, title="rlvr demo: where did the gain come from? (model "
                 "organism)")  # and out/claims.json
    return DemoResult(out=out, anchor=anchor, runs=tuple(run for _, run in jobs), report=report,
                      markdown=render_markdown(analysis),
                      seconds=time.perf_counter() - started)
