"""`rlvr demo`: the organism study, end to end, on a 2-core CPU (rules: docs/analysis.md).

1. Anchor candidates: one outcome-reward history run per *selection* seed over a pool from the
   organism's training split ranks the pool by historical variance; the base is sampled on every
   candidate, and the anchors are picked by kind (rlvr.study.design.anchor_kinds):
   variance-top (the paper's criterion), working-required, hardest and random.
2. Wrong labels from the base's own samples on each training anchor, and the base evaluated
   once: every held-out family, sampled (avg@k at the training temperature) and greedy.
3. The paper's recipe on the two training anchors (variance-top, working-required) with the
   same seeds: outcome, format-only, entropy-only, random reward, guessable and unguessable
   wrong label, and C6's matched-settings variant; C9's hardest and random anchors (outcome);
   C8's weaker organism (derived meanwhile, then trained on the working-required anchor).
   Evaluations only where a claim reads them: every run at its last step, outcome also early
   (C3's pre-saturation point), entropy-only densely early (C5).
   C1's coverage check: the base and the outcome runs' last checkpoints evaluated again with
   32 samples on 16 held-out items per family (pass@k up to 32; rlvr.study.coverage_check).
4. Claims per anchor kind (rlvr.study.findings), reports, `claims.json`, `protocol.json`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr.core.ablations import demo_conditions
from rlvr.errors import UserError
from rlvr.study.findings import PLUMBING

__all__ = ["ABLATIONS", "CLAIM_COMMANDS", "PLUMBING", "DemoPlan", "DemoResult", "eval_schedule", "plan",
           "run_demo"]

# Claims the demo does not run by itself, and the command that does (rlvr/study/claim_commands.py).
CLAIM_COMMANDS = {"robust": "rlvr demo --claim robust --out DEMO_DIR",
                  "C10": "rlvr demo --claim C10 --out DEMO_DIR"}

# (run name, reward.mode, wrong_label_kind, variant overlay) of every condition the demo trains
ABLATIONS = tuple((c.name, c.reward_mode, c.wrong_label_kind, c.variant)
                  for c in demo_conditions())


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of the demo; `plan(quick)` gives the two shipped ones."""

    pool_per_family: int  # training-split candidates per family
    selection_seeds: tuple[int, ...]  # the anchor's own seeds (one history run each)
    history_steps: int
    history_n: int
    seeds: tuple[int, ...]  # every condition trains once per seed, on every anchor
    steps: int
    outcome_eval_steps: tuple[int, ...]  # outcome: C3's pre-saturation point (+ the last)
    early_steps: tuple[int, ...]  # entropy-only: C5's transient (+ the last)
    n_per_suite: int  # held-out items per family
    eval_samples: int  # avg@k at the training temperature (greedy beside it)
    rollout_n: int
    label_samples: int  # base samples per candidate: anchor kinds and wrong labels (≥ 32)
    derive_steps: int = 400  # C8's weaker organism (rlvr.organism.derive)
    # C1's coverage check (rlvr.study.coverage_check): samples per item and held-out items per
    # family of the base's and the outcome runs' second evaluation (pass@k up to k = samples).
    coverage_samples: int = 32
    coverage_per_suite: int = 16
    max_new_tokens: int = 0  # 0 = the measured token budget (protocol.token_budget)
    # Rollouts per seed group (one stacked forward): 2-3 seeds of 16 per group buy ≈ 1.25×,
    # more nothing (docs/benchmarks.md, "Seed groups").
    group_rows: int = 48
    window: int = 3  # saturation window for the report
    threshold: float = 0.8  # saturation threshold for the report


def plan(quick: bool = False) -> DemoPlan:
    if quick:
        # CI: every stage runs, on sizes that only check the plumbing (too small to judge).
        return DemoPlan(pool_per_family=1, selection_seeds=(100, 101), history_steps=2,
                        history_n=4, seeds=(0, 1), steps=3, outcome_eval_steps=(),
                        early_steps=(1, 2), n_per_suite=4, eval_samples=2, rollout_n=4,
                        label_samples=8, derive_steps=5, max_new_tokens=24, window=1,
                        threshold=0.95, coverage_samples=4, coverage_per_suite=2)
    # 3 seeds (one seed group of 48 rollouts) × 100 held-out items (25 per family) meets the
    # verdict size rule (rlvr.analysis.claims.MIN_SEEDS, MIN_ITEMS). avg@4 beside greedy: an
    # evaluation costs more than a run's 60 training steps at avg@8, and the interval is
    # dominated by the items (two-level bootstrap), not by the samples per item. Training
    # accuracy is measured on 16 samples at temperature 1, so "saturated" is ≥ 13 of 16 right
    # for 3 logged steps.
    return DemoPlan(pool_per_family=3, selection_seeds=(100, 101, 102), history_steps=8,
                    history_n=8, seeds=(0, 1, 2), steps=60, outcome_eval_steps=(5, 20),
                    early_steps=(1, 2, 3, 5, 10, 20), n_per_suite=25, eval_samples=4,
                    rollout_n=16, label_samples=64, group_rows=48)


def eval_schedule(p: DemoPlan, name: str) -> tuple[int, ...]:
    """Evaluated steps besides the last: only where a claim reads them."""
    return {"outcome": p.outcome_eval_steps, "entropy-only": p.early_steps}.get(name, ())


@dataclass(frozen=True)
class DemoResult:
    out: Path
    anchors: dict[str, str | None]
    runs: tuple[Path, ...]
    report: Path
    markdown: str
    seconds: float


def condition_config(p: DemoPlan, *, examples: list[str], mode: str, steps: int, seed: int,
                     budget: int, model: str = "", label: str | None = None,
                     kind: str | None = None, evaluate: bool = True, n: int | None = None,
                     eval_steps: tuple[int, ...] = (), overlays: tuple[str, ...] = (),
                     lr: float | None = None):
    """The organism preset for one run of the study: a condition's reward on `examples`, the
    variant's overlays, a learning rate when a sensitivity run changes it."""
    from rlvr.rl.presets import resolve

    overrides: dict[str, Any] = {
        "seed": seed, "steps": steps, "model": {"path": model},
        "data": {"examples": examples},
        "reward": {"mode": mode, **({"label": label} if label else {}),
                   **({"wrong_label_kind": kind} if kind else {})},
        "rollout": {"n": n or p.rollout_n, "max_new_tokens": budget},
        "log": {"eval_every": 0, "save_every": 0,
                "eval_steps": [s for s in eval_steps if s < steps], "samples_every": 5},
        "eval": {"suites": ["organism"] if evaluate else [], "n_per_suite": p.n_per_suite,
                 "samples": p.eval_samples, "at_start": False},
    }
    if lr is not None:
        overrides["optim"] = {"lr": lr}
    config = resolve("organism", overrides=overrides, overlays=overlays)
    if evaluate:  # sampled evaluation at the training temperature, as the protocol says
        overrides["eval"]["temperature"] = config.rollout.temperature
        config = resolve("organism", overrides=overrides, overlays=overlays)
    return config


def _quiet() -> None:
    """No per-load progress bars from transformers: the demo prints its own progress."""
    from transformers.utils import logging

    from rlvr.core.progress import quiet_third_party

    quiet_third_party()
    logging.set_verbosity_error()


def _train_group(configs: list, run_dirs: list[str]) -> list[str]:
    """Worker body: the seeds of one condition as one seed group, on one torch thread (one
    at a time when the condition updates in several mini-batches, which a group cannot)."""
    import torch

    torch.set_num_threads(1)
    _quiet()
    if configs[0].algo.mini_batches > 1 or configs[0].algo.ppo_epochs > 1:
        from rlvr.rl.loop import train

        for config, run_dir in zip(configs, run_dirs, strict=True):
            train(config, run_dir=run_dir, progress=False)
        return run_dirs
    from rlvr.rl.lockstep import train_seeds

    train_seeds(configs, run_dirs)
    return run_dirs


def _derive_job(model: str, out: str, work_acc: float, steps: int) -> str:
    """Worker body: C8's weaker organism (rlvr.organism.derive)."""
    import torch

    torch.set_num_threads(1)
    _quiet()
    from rlvr.model.locate import model_path
    from rlvr.organism.derive import derive

    return str(derive(model_path(model), Path(out), work_acc=work_acc, steps=steps))


def _eval_job(config, model: str, out: str) -> str:
    """Worker body: one evaluation-only run (`base_eval`) on one torch thread."""
    import torch

    torch.set_num_threads(1)
    _quiet()
    base_eval(config, model, Path(out))
    return out


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


def _split(configs: list, dirs: list[Path], size: int) -> list[tuple[list, list[Path]]]:
    return [(configs[i:i + size], dirs[i:i + size]) for i in range(0, len(configs), size)]


def run_parallel(groups: list[tuple[list, list[Path]]], workers: int, console,
                  what: str, group_size: int = 0, jobs: tuple = ()) -> list:
    """Train every (configs, run_dirs) seed group with `workers` processes (split into groups
    of at most `group_size` rollouts per step when > 0), beside the (function, args) `jobs`
    (submitted first); the first failure is raised. Returns the jobs' results."""
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
        extra = [pool.apply_async(fn, args) for fn, args in jobs]
        pending = extra + [pool.apply_async(_train_group, (cfgs, [str(d) for d in dirs]))
                           for cfgs, dirs in groups]
        shown = 0
        while pending:
            pending[0].wait(0.5)
            for result in [r for r in pending if r.ready()]:
                result.get()  # re-raises a worker's UserError or bug with its message
                pending.remove(result)
            # The workers log one metrics line per step: count them for the bar.
            done = sum(_lines(run / "metrics.jsonl") for run in runs)
            advance(done - shown, info=f"{len(groups) + len(extra) - len(pending)}/"
                                       f"{len(groups) + len(extra)} jobs done")
            shown = done
        return [r.get() for r in extra]


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


def _rank_pool(p: DemoPlan, out: Path, model: str, budget: int, workers: int, console):
    from rlvr.evaluation.selection import load_history
    from rlvr.study.design import anchor_pool, choose_anchor

    pool = [q.id for q in anchor_pool(p.pool_per_family)]
    dirs = [out / "history" / f"seed-{s}" for s in p.selection_seeds]
    configs = [condition_config(p, examples=pool, mode="outcome", steps=p.history_steps, seed=s,
                       budget=budget, model=model, evaluate=False, n=p.history_n)
               for s in p.selection_seeds]
    run_parallel([(configs, dirs)], workers, console, "history", p.group_rows)
    return pool, choose_anchor([load_history(d) for d in dirs], p.selection_seeds)


def _sample_pool(p: DemoPlan, pool: list[str], model: str, budget: int, temperature: float
                 ) -> dict[str, list[dict]]:
    """`label_samples` base samples of every candidate (anchor kinds and wrong labels)."""
    from rlvr.model.locate import model_path
    from rlvr.model.rollout import load_model
    from rlvr.rl.problem_sets import organism_problem
    from rlvr.study.design import sample_answers

    net, tokenizer = load_model(model_path(model), device="cpu")
    return {index: sample_answers(net, tokenizer, organism_problem(index),
                                  samples=p.label_samples, seed=0, temperature=temperature,
                                  max_new_tokens=budget) for index in pool}


def run_demo(out: str | Path = "runs/demo", *, quick: bool = False, seed: int = 0,
             workers: int = 2, model: str | Path | None = None, console=None) -> DemoResult:
    """Run the whole study into `out`; `model` defaults to the shipped organism. `seed`
    offsets every condition seed (the anchor's selection seeds stay fixed)."""
    from rich.console import Console

    from rlvr.rundir.write import fresh_run_dir

    console = console or Console(stderr=True)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    given = str(out)  # the path as the user gave it: what claims.json and messages name
    # Refuses a non-empty folder (a demo never overwrites results); a demo that does not
    # finish leaves none (it has no resume).
    with fresh_run_dir(out) as out:
        return _run_demo(out, given, quick=quick, seed=seed, workers=workers, model=model,
                         console=console)


def _run_demo(out: Path, given: str, *, quick: bool, seed: int, workers: int, model,
              console) -> DemoResult:
    from rlvr.rundir.write import atomic_write_json
    from rlvr.study import findings
    from rlvr.study.coverage_check import coverage_config, coverage_targets
    from rlvr.study.design import TRAINING_KINDS, anchor_kinds, token_budget, wrong_labels

    started = time.perf_counter()
    p = plan(quick)
    model = "" if model is None else str(model)
    budget = p.max_new_tokens or token_budget()
    _quiet()
    if quick:
        console.print(f"[bold yellow]{PLUMBING}[/]")
    console.print(f"[bold]1/5[/] anchors: {p.pool_per_family} training-split problems per "
                  f"family × {p.history_steps} steps, selection seeds {p.selection_seeds}; "
                  f"{p.label_samples} base samples per candidate")
    pool, choice = _rank_pool(p, out, model, budget, workers, console)
    probe = condition_config(p, examples=[choice.anchor], mode="outcome", steps=1, seed=0,
                    budget=budget, model=model)
    samples = _sample_pool(p, pool, model, budget, probe.rollout.temperature)
    anchors = anchor_kinds(choice, samples, pool, seed=0)
    labels = {kind: wrong_labels(samples[a], findings.gold(a)) for kind, a in anchors.items()
              if a is not None and kind in TRAINING_KINDS}
    for kind, anchor in anchors.items():
        console.print(f"      {kind}: {anchor or 'none in the pool'}")
    console.print("[bold]2/5[/] base evaluation")
    base_eval(probe, model, out / "base")

    seeds = [seed + s for s in p.seeds]
    layout = findings.layout(out, anchors, seeds)
    groups = []
    for kind, folder in layout.training.items():
        for name, mode, kind_, variant in ABLATIONS:
            label = None if kind_ is None else getattr(labels[kind], kind_)
            if kind_ == "guessable" and label is None:
                continue  # C7 is not testable on this anchor (no wrong boxed answer)
            groups.append(([condition_config(p, examples=[anchors[kind]], mode=mode, steps=p.steps,
                                    seed=s, budget=budget, model=model, label=label,
                                    kind=kind_, eval_steps=eval_schedule(p, name),
                                    overlays=(variant,) if variant else ())
                            for s in seeds], [folder / f"{name}-s{s}" for s in seeds]))
    for kind, dirs in layout.c9_new.items():
        groups.append(([condition_config(p, examples=[anchors[kind]], mode="outcome", steps=p.steps,
                                seed=s, budget=budget, model=model) for s in seeds], dirs))
    c8_anchor = anchors["working-required"] or anchors["variance-top"]
    weak_dir = out / "c8" / findings.WEAK
    atomic_write_json(out / "protocol.json", {
        "plan": asdict(p), "quick": quick, "token_budget": budget, "out": given,
        "model": model or "shipped organism", "anchor": choice.anchor, "anchors": anchors,
        "c8_anchor": c8_anchor, "selection_seeds": list(choice.seeds),
        "candidates": [c.to_dict() for c in choice.candidates],
        "candidate_samples": {i: findings.sample_summary(a) for i, a in samples.items()},
        "wrong_labels": {k: v.to_dict() for k, v in labels.items()}, "seeds": seeds})
    console.print(f"[bold]3/5[/] {len(groups)} seed groups ({len(ABLATIONS)} conditions × "
                  f"{len(layout.training)} anchors, C9 anchors) × {len(seeds)} seeds × "
                  f"{p.steps} steps; C8's weaker organism derived meanwhile")
    run_parallel(groups, workers, console, "conditions", p.group_rows,
                  jobs=((_derive_job, (model, str(weak_dir), findings.WORK_ACC,
                                       p.derive_steps)),))
    console.print(f"[bold]4/5[/] C8: the weaker organism's base and outcome runs; C1's "
                  f"coverage check ({p.coverage_samples} samples × {p.coverage_per_suite} "
                  "items per family, base and outcome runs) meanwhile")
    weak = [condition_config(p, examples=[c8_anchor], mode="outcome", steps=p.steps, seed=s,
                    budget=budget, model=str(weak_dir)) for s in seeds]
    base_eval(weak[0], str(weak_dir), layout.c8_base)
    wide = coverage_config(probe, p.coverage_samples, p.coverage_per_suite)
    run_parallel([(weak, layout.c8_runs)], workers, console, "C8", p.group_rows,
                 jobs=tuple((_eval_job, (wide, m, str(d))) for m, d in
                            coverage_targets(out, layout.outcome_runs, model)))

    console.print("[bold]5/5[/] claims and reports")
    report, markdown = findings.write_all(out, layout, p, quick=quick)
    runs = tuple(run for _, dirs in groups for run in dirs) + tuple(layout.c8_runs)
    return DemoResult(out=out, anchors=anchors, runs=runs, report=report, markdown=markdown,
                      seconds=time.perf_counter() - started)
