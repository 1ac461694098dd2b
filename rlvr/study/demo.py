"""`rlvr demo`: the organism study, end to end, on a 2-core CPU (protocol: rlvr/study/design.py).

1. Anchor, picked once: one outcome-reward history run per *selection* seed over a pool from
   the organism's training split; historical variance ranks the pool (mean over the selection
   seeds, with its interval; near-ties flagged).
2. Wrong labels from the base's own modes on that anchor (sampled), and the base evaluated once:
   every held-out family, sampled (avg@k at the training temperature) and greedy.
3. Six conditions from the fixed anchor, each with every seed: outcome, format-only,
   entropy-only, random reward, guessable and unguessable wrong label. Each run evaluates at
   a schedule denser early (`DemoPlan.eval_steps`) and at the end. A condition's seeds train
   together as one seed group (`rlvr.rl.lockstep`: their forwards stacked into one), two
   conditions side by side with one torch thread each.
4. The report (`rlvr.analysis`) and `protocol.json`, which records every choice above.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr.core.ablations import CONDITIONS
from rlvr.errors import UserError

__all__ = ["ABLATIONS", "CLAIM_COMMANDS", "DemoPlan", "DemoResult", "base_eval", "condition_config",
           "plan", "run_demo", "run_parallel"]

# Claims the demo does not run by itself, and the command that does (rlvr/study/claim_commands.py).
CLAIM_COMMANDS = {"C8": "rlvr demo --claim C8 --out DEMO_DIR",
                  "C9": "rlvr demo --claim C9 --out DEMO_DIR"}

# (run name, reward.mode, wrong_label_kind) of every condition in the registry, in its order
ABLATIONS = tuple((c.name, c.reward_mode, c.wrong_label_kind) for c in CONDITIONS)


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of the demo; `plan(quick)` gives the two shipped ones."""

    pool_per_family: int  # training-split candidates per family
    selection_seeds: tuple[int, ...]  # the anchor's own seeds (one history run each)
    history_steps: int
    history_n: int
    seeds: tuple[int, ...]  # every condition trains once per seed
    steps: int
    eval_steps: tuple[int, ...]  # evaluations besides the base and the last step
    n_per_suite: int  # held-out items per family
    eval_samples: int  # avg@k at the training temperature (greedy beside it)
    rollout_n: int
    label_samples: int  # base samples on the anchor that define the wrong labels
    max_new_tokens: int = 0  # 0 = the measured token budget (protocol.token_budget)
    # Rollouts per seed group (one stacked forward): a condition's seeds are split into groups
    # of at most this many rollouts per step (at least one seed). Past it a forward on the
    # 2-core CPU stops gaining from batching (docs/benchmarks.md, "Seed groups").
    group_rows: int = 48
    window: int = 3  # saturation window for the report
    threshold: float = 0.8  # saturation threshold for the report

    @property
    def runs(self) -> int:
        return len(ABLATIONS) * len(self.seeds)


def plan(quick: bool = False) -> DemoPlan:
    if quick:
        # CI: every stage runs, on sizes that only check the plumbing.
        return DemoPlan(pool_per_family=1, selection_seeds=(100, 101), history_steps=2,
                        history_n=4, seeds=(0, 1), steps=3, eval_steps=(1,), n_per_suite=4,
                        eval_samples=2, rollout_n=4, label_samples=8, max_new_tokens=24,
                        window=1, threshold=0.95)
    # Training accuracy is measured on 16 samples at temperature 1, so "saturated" is ≥ 13 of
    # 16 right for 3 logged steps (0.95 would need 16 of 16 every time).
    # Four evaluation points per run (the shared base, steps 5 and 20, the last): early ones
    # for a transient (entropy-only), a late one after the anchor saturates (near step 50 at
    # the preset's rate, from the recipe sweep's training curves).
    return DemoPlan(pool_per_family=2, selection_seeds=(100, 101, 102), history_steps=8,
                    history_n=8, seeds=(0, 1, 2, 3, 4), steps=80, eval_steps=(5, 20),
                    n_per_suite=50, eval_samples=8, rollout_n=16, label_samples=64)


@dataclass(frozen=True)
class DemoResult:
    out: Path
    anchor: str
    runs: tuple[Path, ...]
    report: Path
    markdown: str
    seconds: float


def condition_config(p: DemoPlan, *, examples: list[str], mode: str, steps: int, seed: int,
                     budget: int, model: str = "", label: str | None = None,
                     kind: str | None = None, evaluate: bool = True, n: int | None = None,
                     eval_steps: tuple[int, ...] | None = None):
    """The organism preset for one run of the study: a condition's reward on `examples`."""
    from rlvr.rl.presets import resolve

    overrides: dict[str, Any] = {
        "seed": seed, "steps": steps, "model": {"path": model},
        "data": {"examples": examples},
        "reward": {"mode": mode, **({"label": label} if label else {}),
                   **({"wrong_label_kind": kind} if kind else {})},
        "rollout": {"n": n or p.rollout_n, "max_new_tokens": budget},
        "log": {"eval_every": 0, "save_every": 0,
                "eval_steps": list(p.eval_steps if eval_steps is None else eval_steps),
                "samples_every": 5},
        "eval": {"suites": ["organism"] if evaluate else [], "n_per_suite": p.n_per_suite,
                 "samples": p.eval_samples, "at_start": False},
    }
    config = resolve("organism", overrides=overrides)
    if evaluate:  # sampled evaluation at the training temperature, as the protocol says
        overrides["eval"]["temperature"] = config.rollout.temperature
        config = resolve("organism", overrides=overrides)
    return config


def _quiet() -> None:
    """No per-load progress bars from transformers: the demo prints its own progress."""
    from transformers.utils import logging

    from rlvr.core.progress import quiet_third_party

    quiet_third_party()
    logging.set_verbosity_error()


def _train_group(configs: list, run_dirs: list[str]) -> list[str]:
    """Worker body: the seeds of one condition as one seed group, on one torch thread."""
    import torch

    torch.set_num_threads(1)
    _quiet()
    from rlvr.rl.lockstep import train_seeds

    train_seeds(configs, run_dirs)
    return run_dirs


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


def _split(configs: list, dirs: list[Path], size: int) -> list[tuple[list, list[Path]]]:
    return [(configs[i:i + size], dirs[i:i + size]) for i in range(0, len(configs), size)]


def run_parallel(groups: list[tuple[list, list[Path]]], workers: int, console,
                 what: str, group_size: int = 0) -> None:
    """Train every (configs, run_dirs) seed group with `workers` processes (split into groups
    of at most `group_size` rollouts per step when > 0); the first failure is raised."""
    from rlvr.core.progress import bar

    if group_size > 0:
        groups = [part for cfgs, dirs in groups
                  for part in _split(cfgs, dirs, max(1, group_size // cfgs[0].responses_per_step))]
    context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
    # The workers start with Ctrl-C ignored (an ignored signal stays ignored in a child): the
    # terminal's SIGINT reaches the whole process group, and only this process should answer
    # it, by terminating the pool (`with` does) instead of each worker printing a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, initializer=_one_thread)
    finally:
        signal.signal(signal.SIGINT, previous)
    runs = [run for _, dirs in groups for run in dirs]
    steps = sum(c.steps for cfgs, _ in groups for c in cfgs)
    with pool, bar(f"{what} steps", steps, keep=True) as advance:
        pending = [pool.apply_async(_train_group, (cfgs, [str(d) for d in dirs]))
                   for cfgs, dirs in groups]
        shown = 0
        while pending:
            pending[0].wait(0.5)
            for result in [r for r in pending if r.ready()]:
                result.get()  # re-raises a worker's UserError or bug with its message
                pending.remove(result)
            # The workers log one metrics line per step: count them for the bar.
            done = sum(_lines(run / "metrics.jsonl") for run in runs)
            advance(done - shown, info=f"{len(groups) - len(pending)}/{len(groups)} groups done")
            shown = done


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def base_eval(config, model: str, out: Path) -> None:
    """Evaluate the base `model` once into `out` (an evaluation-only run: the report's base),
    with the settings the condition runs of `config` evaluate with (rlvr.rl.eval_hook)."""
    from rlvr.evaluation.evaluate import evaluate
    from rlvr.model.locate import model_path
    from rlvr.model.rollout import load_model
    from rlvr.rl.eval_hook import eval_settings
    from rlvr.rl.problem_sets import eval_suites
    from rlvr.rundir.write import new_run_dir, write_config_toml

    e = config.eval
    settings = eval_settings(config)
    path = model_path(model)
    net, tokenizer = load_model(path, device="cpu")
    run_dir = new_run_dir(out)
    write_config_toml(run_dir / "config.toml", {
        "kind": "eval", "model": {"path": model},
        "eval": {**settings.to_dict(), "suites": list(e.suites),
                 "limit": e.n_per_suite}}, seed=settings.seed)
    evaluate(net, tokenizer, eval_suites(e), settings, run_dir=run_dir, step=0,
             progress=False, model_name=str(path))


def _pick_anchor(p: DemoPlan, out: Path, model: str, budget: int, workers: int, console):
    from rlvr.evaluation.selection import load_history
    from rlvr.study.design import anchor_pool, choose_anchor

    pool = [q.id for q in anchor_pool(p.pool_per_family)]
    dirs = [out / "history" / f"seed-{s}" for s in p.selection_seeds]
    configs = [condition_config(p, examples=pool, mode="outcome", steps=p.history_steps,
                                seed=s, budget=budget, model=model, evaluate=False,
                                n=p.history_n)
               for s in p.selection_seeds]
    run_parallel([(configs, dirs)], workers, console, "history", p.group_rows)
    return choose_anchor([load_history(d) for d in dirs], p.selection_seeds)


def _labels(p: DemoPlan, anchor: str, model: str, budget: int, temperature: float):
    from rlvr.model.locate import model_path
    from rlvr.model.rollout import load_model
    from rlvr.rl.problem_sets import organism_problem
    from rlvr.study.design import sample_answers, wrong_labels

    problem = organism_problem(anchor)
    net, tokenizer = load_model(model_path(model), device="cpu")
    answers = sample_answers(net, tokenizer, problem, samples=p.label_samples, seed=0,
                             temperature=temperature, max_new_tokens=budget)
    return wrong_labels(answers, problem.answer)


def run_demo(out: str | Path = "runs/demo", *, quick: bool = False, seed: int = 0,
             workers: int = 2, model: str | Path | None = None, console=None) -> DemoResult:
    """Run the whole study into `out`; `model` defaults to the shipped organism. `seed`
    offsets every condition seed (the anchor's selection seeds stay fixed)."""
    from rich.console import Console

    from rlvr.rundir.write import fresh_run_dir

    console = console or Console(stderr=True)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    # Refuses a non-empty folder (a demo never overwrites results); a demo that does not
    # finish leaves none (it has no resume).
    with fresh_run_dir(out) as out:
        return _run_demo(out, quick=quick, seed=seed, workers=workers, model=model,
                         console=console)


def _run_demo(out: Path, *, quick: bool, seed: int, workers: int, model, console) -> DemoResult:
    from rlvr.rundir.write import atomic_write_json
    from rlvr.study.design import token_budget

    started = time.perf_counter()
    p = plan(quick)
    model = "" if model is None else str(model)
    budget = p.max_new_tokens or token_budget()
    _quiet()

    console.print(f"[bold]1/4[/] anchor: {p.pool_per_family} training-split problems per "
                  f"family × {p.history_steps} steps, selection seeds {p.selection_seeds}")
    choice = _pick_anchor(p, out, model, budget, workers, console)
    top = choice.candidates[0]
    ties = f"; tied within noise: {', '.join(choice.ties)}" if choice.ties else ""
    interval = "" if top.low is None else f" [{top.low:.3f}, {top.high:.3f}]"
    console.print(f"      anchor {choice.anchor}: variance score {top.score:.3f}"
                  f"{interval}{ties}")

    probe = condition_config(p, examples=[choice.anchor], mode="outcome", steps=1, seed=0,
                             budget=budget, model=model)
    labels = _labels(p, choice.anchor, model, budget, probe.rollout.temperature)
    console.print(f"[bold]2/4[/] wrong labels for gold {labels.gold}: guessable "
                  f"{labels.guessable} ({labels.guessable_count}/{labels.samples} base samples, "
                  f"{labels.guessable_styles}), unguessable {labels.unguessable}; base evaluation")
    base_eval(probe, model, out / "base")

    if labels.guessable is None:
        console.print("      no base sample gave a wrong boxed answer: the guessable label "
                      "falls back to a near miss of the gold (rewards.make_wrong_label)")
    groups = []
    for name, mode, kind in ABLATIONS:
        # The kind stays in the config (the report's role); the label, when the base's samples
        # define one, replaces make_wrong_label's.
        label = None if kind is None else getattr(labels, kind)
        groups.append(([condition_config(p, examples=[choice.anchor], mode=mode,
                                         steps=p.steps, seed=seed + s, budget=budget,
                                         model=model, label=label, kind=kind)
                        for s in p.seeds],
                       [out / f"{name}-s{seed + s}" for s in p.seeds]))
    atomic_write_json(out / "protocol.json", {
        "plan": asdict(p), "quick": quick, "token_budget": budget, "model": model or "shipped organism",
        "anchor": choice.anchor, "selection_seeds": list(choice.seeds),
        "candidates": [c.to_dict() for c in choice.candidates], "wrong_labels": labels.to_dict(),
        "seeds": [seed + s for s in p.seeds]})
    console.print(f"[bold]3/4[/] {len(ABLATIONS)} conditions × {len(p.seeds)} seeds × "
                  f"{p.steps} steps")
    run_parallel(groups, workers, console, "conditions", p.group_rows)

    console.print("[bold]4/4[/] report")
    runs = tuple(run for _, dirs in groups for run in dirs)
    report, markdown = _report(out, runs, p)
    return DemoResult(out=out, anchor=choice.anchor, runs=runs, report=report,
                      markdown=markdown, seconds=time.perf_counter() - started)


def _report(out: Path, runs: tuple[Path, ...], p: DemoPlan) -> tuple[Path, str]:
    from rlvr.analysis.compute import analyze
    from rlvr.analysis.report import render_markdown, write_report

    analysis = analyze(list(runs), base=out / "base", threshold=p.threshold, window=p.window)
    report = out / "report.html"
    claims = write_report(analysis, report, title="rlvr demo: where did the gain come from? "
                          "(model organism)")
    _point_to_commands(claims)
    return report, render_markdown(analysis)


def _point_to_commands(claims: Path) -> None:
    """C8 and C9 need runs the demo does not make: a `not run` entry names its command."""
    import json

    from rlvr.rundir.write import atomic_write_json

    entries = json.loads(claims.read_text(encoding="utf-8"))
    for entry in entries:
        command = CLAIM_COMMANDS.get(entry["id"])
        if command and entry["verdict"] == "not run":
            entry["measure"] += f" (run: {command.replace('DEMO_DIR', str(claims.parent))})"
    atomic_write_json(claims, entries)
