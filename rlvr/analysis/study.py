"""Everything the report shows, computed from run directories: `analyze(paths) -> Analysis`.

The base evaluation is, in order of preference: the `--base` run (its step 0), an evaluation-only
run among the inputs, or step 0 of the first training run (the trainer evaluates the model
before any update). Every comparison that cannot be made becomes a note, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlvr.analysis.labels import LabelRow, label_study
from rlvr.analysis.rundir import EvalStep, Run, load_run, load_runs
from rlvr.analysis.saturation import Saturation, analyze_saturation
from rlvr.analysis.transitions import (
    SuiteDecomposition,
    WaterfallRow,
    decompose,
    mean_row,
    pool,
    waterfall,
)

__all__ = ["DISPLAY_ORDER", "Analysis", "RunComparison", "analyze"]

# Tables list runs by role in this order (a stable sort keeps the user's order within a role).
DISPLAY_ORDER = ("outcome", "format-only", "entropy-only", "random", "guessable wrong label",
                 "unguessable wrong label", "wrong label", "eval")


@dataclass(frozen=True)
class RunComparison:
    """One run's final evaluation against the base, per suite and pooled over suites."""

    run: str
    role: str
    step: int
    suites: tuple[SuiteDecomposition, ...]
    total: SuiteDecomposition | None


@dataclass(frozen=True)
class Analysis:
    runs: tuple[Run, ...]
    base: Run | None
    base_step: EvalStep | None
    base_label: str
    comparisons: tuple[RunComparison, ...]
    waterfall: tuple[WaterfallRow, ...]
    waterfall_mean: WaterfallRow | None
    saturations: tuple[Saturation, ...]
    labels: tuple[LabelRow, ...]
    threshold: float
    window: int
    notes: tuple[str, ...]


def _pick_base(runs: list[Run], base_path: str | Path | None, notes: list[str],
               decoding: str) -> tuple[Run | None, EvalStep | None, str, list[Run]]:
    """Return (base run, its evaluation, a label for it, the runs left to compare)."""
    if base_path is not None:
        base = load_run(base_path, decoding)
        notes.extend(f"{base.name} (base): {p}" for p in base.problems)
        if not base.evals:
            notes.append(f"base {base.name} has no evaluation: no comparison with the base "
                         "can be made")
            return base, None, base.name, runs
        step = 0 if 0 in base.evals else min(base.evals)
        if step != 0:
            notes.append(f"base {base.name} has no eval/step-0; using its step {step}")
        same = base.path.resolve()
        # The base given again among RUN_DIRs would only be compared with itself.
        rest = [r for r in runs if r.path.resolve() != same or r.final_step != step]
        return base, base.evals[step], f"{base.name} (step {step})", rest
    for run in runs:
        if not run.is_training and run.evals:
            step = min(run.evals)
            return run, run.evals[step], run.name, [r for r in runs if r is not run]
    for run in runs:
        if 0 in run.evals:
            return run, run.evals[0], f"step 0 of {run.name}", runs
    notes.append("no base evaluation (no --base, no eval-only run, no eval/step-0 in any run): "
                 "the decomposition, waterfall and gains cannot be computed; pass --base DIR "
                 "with an `rlvr eval` run of the starting model")
    return None, None, "", runs


def _compare(run: Run, base: Run | None, base_step: EvalStep, base_label: str,
             notes: list[str]) -> RunComparison | None:
    if run.final_step is None:
        return None
    if run is base and run.final_step == 0:
        notes.append(f"{run.name}: only a step-0 evaluation; nothing to compare with the base")
        return None
    if base is not None and base.model and run.model and base.model != run.model:
        notes.append(f"{run.name} started from {run.model}, the base evaluates {base.model}: "
                     "its gains may not be gains over this base")
    rows, suite_notes = decompose(base_step, run.evals[run.final_step], run=run.name,
                                  base_name=base_label)
    notes.extend(suite_notes)
    if not rows:
        notes.append(f"{run.name}: no suite in common with the base; no decomposition")
        return None
    return RunComparison(run=run.name, role=run.role, step=run.final_step, suites=tuple(rows),
                         total=pool(rows) if len(rows) > 1 else None)


def analyze(paths: Sequence[str | Path], base: str | Path | None = None,
            threshold: float = 0.95, window: int = 5, decoding: str = "auto") -> Analysis:
    if not paths:
        raise ValueError("analyze needs at least one run directory")
    runs = sorted(load_runs(list(paths), decoding), key=lambda r: DISPLAY_ORDER.index(r.role)
                  if r.role in DISPLAY_ORDER else len(DISPLAY_ORDER))
    notes: list[str] = [f"{run.name}: {p}" for run in runs for p in run.problems]
    base_run, base_step, base_label, compared = _pick_base(runs, base, notes, decoding)
    comparisons: list[RunComparison] = []
    rows: list[WaterfallRow] = []
    if base_step is not None:
        for run in compared:
            comparison = _compare(run, base_run, base_step, base_label, notes)
            if comparison is not None:
                comparisons.append(comparison)
        groups: dict[str, list[tuple[str, EvalStep]]] = {}
        for run in compared:
            if run.final_step:  # a run with only step 0 measured no training
                groups.setdefault(run.role, []).append((run.name, run.evals[run.final_step]))
        if any(run.final_step for run in compared):
            rows, wf_notes = waterfall(base_step, groups)
            notes.extend(wf_notes)
    saturations = [analyze_saturation(run, threshold, window) for run in compared
                   if run.is_training]
    # "never saturated" is a result shown in its table, not a comparison that failed.
    notes.extend(f"{s.run}: {s.note}" for s in saturations
                 if s.note and (s.step is not None or not s.curve))
    labels, label_notes = label_study(
        compared, {c.run: c.suites for c in comparisons}, {s.run: s for s in saturations})
    notes.extend(label_notes)
    return Analysis(
        runs=tuple(compared), base=base_run, base_step=base_step, base_label=base_label,
        comparisons=tuple(comparisons), waterfall=tuple(rows), waterfall_mean=mean_row(rows),
        saturations=tuple(saturations), labels=tuple(labels), threshold=threshold,
        window=window, notes=tuple(dict.fromkeys(notes)),
    )
