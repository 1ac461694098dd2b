"""Everything the report shows, computed from run directories: `analyze(paths) -> Analysis`.

The base evaluation is, in order of preference: the `--base` run (its step 0), an evaluation-only
run among the inputs that evaluated the model the training runs started from (never one of a
trained checkpoint), or step 0 of the first training run (the trainer evaluates the model
before any update). Without training runs the base must be named with `--base`. A comparison
whose two sides decode differently or share too few items (rlvr.decomposition.comparable) is
left out with a note unless allowed. Every comparison that cannot be made becomes a note, never an exception.
Each run's final evaluation is decomposed against the base (decomposition.py) with intervals;
runs of one role form a condition (conditions.py); the claims checklist reads all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlvr.analysis.conditions import ConditionResult, Contrast, Member, condition_rows, contrasts
from rlvr.analysis.labels import LabelRow, label_study
from rlvr.analysis.saturation import Saturation, analyze_saturation
from rlvr.core.ablations import CONDITIONS
from rlvr.core.stats import Estimate, item_accuracy
from rlvr.decomposition.coverage import Coverage, coverage
from rlvr.decomposition.gain import GainDecomposition, decompose
from rlvr.decomposition.styles import default_classifier
from rlvr.rundir.read import EvalStep, Run, load_run, load_runs

__all__ = ["DISPLAY_ORDER", "Analysis", "RunComparison", "analyze", "step_accuracy"]

# Tables list runs by role in this order (a stable sort keeps the user's order within a role).
DISPLAY_ORDER = (*(c.role for c in CONDITIONS), "wrong label", "eval")


@dataclass(frozen=True)
class RunComparison:
    """One run's final evaluation against the base: the decomposition (avg@k, or greedy for
    greedy-only evaluations), greedy accuracy beside it, and the peak evaluated step."""

    run: str
    role: str
    seed: int | None
    step: int
    decomposition: GainDecomposition
    greedy: tuple[Estimate, Estimate] | None  # (base, trained) greedy accuracy, all suites
    peak_step: int
    peak: Estimate  # accuracy at the peak step, on the same items as the base comparison
    coverage: Coverage | None = None  # pass@k curves and one-side-only items (classifier-free)

    @property
    def total(self):
        return self.decomposition.all


@dataclass(frozen=True)
class Analysis:
    runs: tuple[Run, ...]
    base: Run | None
    base_step: EvalStep | None
    base_label: str
    classifier: str
    comparisons: tuple[RunComparison, ...]
    conditions: tuple[ConditionResult, ...]
    contrasts: tuple[Contrast, ...]
    saturations: tuple[Saturation, ...]
    labels: tuple[LabelRow, ...]
    threshold: float
    window: int
    notes: tuple[str, ...]


def _pick_base(runs: list[Run], base_path: str | Path | None, notes: list[str],
               decoding: str) -> tuple[Run | None, EvalStep | None, str, list[Run]]:
    """Return (base run, its evaluation, a label for it, the runs left to compare)."""
    if base_path is not None:
        base_path, asked = Path(base_path), None
        if base_path.parent.name == "eval" and base_path.name[5:].isdigit():
            # …/eval/step-N: that evaluation of its run or evaluation folder.
            base_path, asked = base_path.parent.parent, int(base_path.name[5:])
        base = load_run(base_path, decoding)
        notes.extend(f"{base.name} (base): {p}" for p in base.warnings)
        if not base.evals or (asked is not None and asked not in base.evals):
            notes.append(f"base {base.name} has no evaluation"
                         + ("" if asked is None else f" at step {asked}")
                         + ": no comparison with the base can be made")
            return base, None, base.name, runs
        step = asked if asked is not None else (0 if 0 in base.evals else min(base.evals))
        if step != 0:
            notes.append(f"base {base.name} has no eval/step-0; using its step {step}")
        same = base.path.resolve()
        # The base given again among RUN_DIRs would only be compared with itself.
        rest = [r for r in runs if r.path.resolve() != same or r.final_step != step]
        return base, base.evals[step], f"{base.name} (step {step})", rest
    starts = {_model_key(r.model) for r in runs if r.is_training}
    for run in runs:
        if not run.is_training and run.evals:
            if _is_checkpoint(run) or _model_key(run.model) not in starts:
                what = "a trained checkpoint" if _is_checkpoint(run) else (
                    f"{run.model or 'an unrecorded model'}, not the model the training runs "
                    "started from")
                notes.append(f"{run.name} evaluates {what}: not taken as the base (name it "
                             "with --base to use it)")
                continue
            step = min(run.evals)
            return run, run.evals[step], run.name, [r for r in runs if r is not run]
    for run in runs:
        if 0 in run.evals and run.is_training:
            return run, run.evals[0], f"step 0 of {run.name}", runs
    notes.append("no base evaluation (no --base, no eval-only run of the starting model, no "
                 "eval/step-0 in any training run): the decomposition and gains cannot be "
                 "computed; pass --base DIR with an evaluation of the starting model")
    return None, None, "", runs


def _model_key(model: str | None) -> str | None:
    """One spelling per model: "" (the trainer's shipped organism) and its folder are one."""
    if model is None:
        return None
    from rlvr.organism import default_path

    path = default_path() if model == "" else Path(model)
    return str(path.resolve()) if path.exists() else model


def _is_checkpoint(run: Run) -> bool:
    """An evaluation of a trained checkpoint (`rlvr eval --model RUN/checkpoints/step-N`)."""
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    path = Path(run.model or "")
    return bool(model.get("run")) or (path.parent.name in ("checkpoints", "snapshots")
                                      and path.name.startswith("step-"))


def step_accuracy(step: EvalStep, like: EvalStep | None = None, greedy: bool = False,
                  seed: int = 0) -> Estimate | None:
    """Accuracy over the suites and items `step` shares with `like` (all, without it)."""
    records = step.greedy if greedy else step.records
    ids = None if like is None else {(r.suite, r.id) for recs in (
        like.greedy if greedy else like.records).values() for r in recs}
    items: dict[tuple[str, str], list[bool]] = {}
    for recs in records.values():
        for r in recs:
            if ids is None or (r.suite, r.id) in ids:
                items.setdefault((r.suite, r.id), []).append(r.correct_strict)
    return item_accuracy(list(items.values()), seed=seed) if items else None


def _greedy(base: EvalStep, trained: EvalStep) -> tuple[Estimate, Estimate] | None:
    if not base.greedy or not trained.greedy:
        return None
    pair = step_accuracy(base, trained, greedy=True), step_accuracy(trained, base, greedy=True)
    return None if None in pair else pair


def _refusal(run: Run, base: Run | None, base_step: EvalStep, allow: frozenset[str]
             ) -> str | None:
    """Why `run` cannot be compared with the base (too few shared items, other decoding)."""
    from rlvr.decomposition.comparable import decoding_differences, overlap, overlap_refusal

    final = run.evals[run.final_step]
    ov = overlap(base_step, final)
    why = overlap_refusal(ov, min_items=1)  # small comparisons: point values, no interval
    if why and "partial" not in allow:
        return f"{run.name}: not compared with the base: {why} (--allow-partial compares anyway)"
    if base is None or "mismatch" in allow:
        return None
    differences, _ = decoding_differences(base.path / "eval" / f"step-{base_step.step}",
                                          run.path / "eval" / f"step-{run.final_step}",
                                          sorted(ov.compared), final.decoding)
    if differences:
        return (f"{run.name}: not compared with the base: decoding differs "
                f"({'; '.join(differences)}; --allow-mismatch compares anyway)")
    return None


def _compare(run: Run, base: Run | None, base_step: EvalStep, base_label: str,
             classifier: str, notes: list[str], allow: frozenset[str] = frozenset()
             ) -> RunComparison | None:
    if run.final_step is None:
        return None
    if run is base and run.final_step == 0:
        notes.append(f"{run.name}: only a step-0 evaluation; nothing to compare with the base")
        return None
    if base is not None and base.model and run.model and base.model != run.model:
        notes.append(f"{run.name} started from {run.model}, the base evaluates {base.model}: "
                     "its gains may not be gains over this base")
    final = run.evals[run.final_step]
    refused = _refusal(run, base, base_step, allow)
    if refused:
        notes.append(refused)
        return None
    result, suite_notes = decompose(base_step, final, classifier=classifier, run=run.name,
                                    base_name=base_label)
    notes.extend(suite_notes)
    if result is None:
        notes.append(f"{run.name}: no suite in common with the base; no decomposition")
        return None
    peaks = [(s, step_accuracy(run.evals[s], base_step)) for s in sorted(run.evals) if s > 0]
    peaks = [(s, e) for s, e in peaks if e is not None] or [(run.final_step,
                                                            result.all.trained_acc)]
    peak_step, peak = max(peaks, key=lambda p: p[1].value)
    return RunComparison(run=run.name, role=run.role, seed=run.seed, step=run.final_step,
                         decomposition=result, greedy=_greedy(base_step, final),
                         peak_step=peak_step, peak=peak, coverage=coverage(base_step, final))


def _members(runs: Sequence[Run], comparisons: Sequence[RunComparison]
             ) -> dict[str, list[Member]]:
    by_name = {r.name: r for r in runs}
    members: dict[str, list[Member]] = {}
    for c in comparisons:
        if c.step == 0:
            continue
        members.setdefault(c.role, []).append(Member(
            c.run, c.seed, by_name[c.run].evals[c.step], c.total.trained_acc, c.total.gain,
            c.total.n_items))
    return members


def analyze(paths: Sequence[str | Path], base: str | Path | None = None,
            threshold: float = 0.95, window: int = 5, decoding: str = "auto",
            classifier: str | None = None, allow: Sequence[str] = ()) -> Analysis:
    """`allow`: "partial" and/or "mismatch", comparisons the checks would otherwise leave out."""
    if not paths:
        raise ValueError("analyze needs at least one run directory")
    runs = sorted(load_runs(list(paths), decoding), key=lambda r: DISPLAY_ORDER.index(r.role)
                  if r.role in DISPLAY_ORDER else len(DISPLAY_ORDER))
    notes: list[str] = [f"{run.name}: {p}" for run in runs for p in run.warnings]
    base_run, base_step, base_label, compared = _pick_base(runs, base, notes, decoding)
    model = base_run.model if base_run is not None else (runs[0].model if runs else None)
    name = classifier or default_classifier(model)
    comparisons: list[RunComparison] = []
    if base_step is not None:
        for run in compared:
            comparison = _compare(run, base_run, base_step, base_label, name, notes,
                                  frozenset(allow))
            if comparison is not None:
                comparisons.append(comparison)
    members = _members(compared, comparisons)
    saturations = [analyze_saturation(run, threshold, window) for run in compared
                   if run.is_training]
    # "never saturated" is a result shown in its table, not a comparison that failed.
    notes.extend(f"{s.run}: {s.note}" for s in saturations
                 if s.note and (s.step is not None or not s.curve))
    labels, label_notes = label_study(
        compared, {c.run: c.decomposition.suites for c in comparisons},
        {s.run: s for s in saturations})
    notes.extend(label_notes)
    return Analysis(
        runs=tuple(compared), base=base_run, base_step=base_step, base_label=base_label,
        classifier=name, comparisons=tuple(comparisons),
        conditions=tuple(condition_rows(members)), contrasts=tuple(contrasts(members)),
        saturations=tuple(saturations), labels=tuple(labels), threshold=threshold,
        window=window, notes=tuple(dict.fromkeys(notes)),
    )
