"""The label study: how much does the reward's *content* matter?

One row per condition, recognised from config.toml (`reward.mode`, `reward.wrong_label_kind`):
the correct label, a guessable wrong label (near the truth, e.g. π1's 12.8 vs ∛2048), an
unguessable wrong one, entropy-only (no reward) and random reward. Training accuracy is always
against the TRUE gold (docs/run-format.md), so a wrong-label run shows whether the model learned
the label or kept the truth. Where the trainer logged, per step, how many rollouts produced the
training label by style (`label_hits` in metrics.jsonl), the row says at which step a
wrong-label run first produced its label, and in which style.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlvr.analysis.conditions import seed_or_items
from rlvr.analysis.saturation import Saturation
from rlvr.core.ablations import label_study_rows
from rlvr.core.stats import Estimate, item_accuracy
from rlvr.decomposition.gain import Decomposition
from rlvr.rundir.read import Run

__all__ = ["CONDITIONS", "LabelRow", "first_label_step", "label_study"]

# (role, what the table calls it), from the registry
CONDITIONS = label_study_rows()


@dataclass(frozen=True)
class LabelRow:
    condition: str
    runs: tuple[str, ...]
    labels: tuple[str, ...]
    accuracy: dict[str, Estimate]  # suite -> final strict accuracy (mean over seeds)
    gain: dict[str, Estimate]  # suite -> gain over base (only where a base was compared)
    train_acc: float | None  # last logged train accuracy vs the true gold (mean over runs)
    reward_mean: float | None
    saturation: tuple[int | None, ...]
    first_label: tuple[str, ...] = ()  # per run: "step N (style: hits)", "never", "not logged"


def first_label_step(run: Run) -> str:
    """When a run's rollouts first produced its training label, and in which styles."""
    logged = [m for m in run.metrics if isinstance(m.raw.get("label_hits"), dict)]
    if not logged:
        return "not logged"
    for m in logged:
        hits = {str(k): v for k, v in m.raw["label_hits"].items()
                if isinstance(v, (int, float)) and v > 0}
        if hits:
            styles = ", ".join(f"{k}: {v:g}" for k, v in sorted(hits.items(),
                                                               key=lambda kv: -kv[1]))
            return f"step {m.step} ({styles})"
    return f"never in {len(logged)} logged steps"


def _suite_accuracy(step, suite: str) -> Estimate | None:
    """Item-bootstrap accuracy of one suite; the summary's value (no interval) without records."""
    records = step.records.get(suite)
    if not records:
        value = step.accuracy(suite)
        return None if value is None else Estimate(value, None, None, "none", 0)
    by_item: dict[str, list[bool]] = {}
    for r in records:
        by_item.setdefault(r.id, []).append(r.correct_strict)
    return item_accuracy(list(by_item.values()))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _row(condition: str, members: list[Run],
         decompositions: Mapping[str, Sequence[Decomposition]],
         saturations: Mapping[str, Saturation]) -> LabelRow:
    accuracy: dict[str, list[Estimate]] = {}
    gain: dict[str, list[Estimate]] = {}
    for run in members:
        rows = decompositions.get(run.name)
        if rows:
            for row in rows:
                accuracy.setdefault(row.suite, []).append(row.trained_acc)
                gain.setdefault(row.suite, []).append(row.gain)
        elif run.final_step is not None:
            step = run.evals[run.final_step]
            for suite in step.suites:
                found = _suite_accuracy(step, suite)
                if found is not None:
                    accuracy.setdefault(suite, []).append(found)
    last = [run.metrics[-1] for run in members if run.metrics]
    return LabelRow(
        condition=condition,
        runs=tuple(run.name for run in members),
        labels=tuple(run.label or "" for run in members),
        accuracy={s: seed_or_items(v) for s, v in accuracy.items()},
        gain={s: seed_or_items(v) for s, v in gain.items()},
        train_acc=_mean([m.train_acc_mean for m in last]),
        reward_mean=_mean([m.reward_mean for m in last]),
        saturation=tuple(saturations[r.name].step if r.name in saturations else None
                         for r in members),
        first_label=tuple(first_label_step(r) for r in members),
    )


def label_study(runs: Sequence[Run], decompositions: Mapping[str, Sequence[Decomposition]],
                saturations: Mapping[str, Saturation]) -> tuple[list[LabelRow], list[str]]:
    """Rows for the conditions present; a note names the ones missing.

    The table needs at least two conditions (one alone compares nothing).
    """
    rows = []
    missing = []
    for role, condition in CONDITIONS:
        members = [run for run in runs if run.role == role]
        if members:
            rows.append(_row(condition, members, decompositions, saturations))
        else:
            missing.append(condition)
    unknown_kind = [run.name for run in runs if run.role == "wrong label"]
    notes = []
    if unknown_kind:
        notes.append(f"label study: {', '.join(unknown_kind)} set reward.mode = wrong_label "
                     "without reward.wrong_label_kind (guessable/unguessable); left out")
    if len(rows) < 2:
        return [], notes + ["label study: needs at least two of correct label, guessable wrong, "
                            "unguessable wrong, entropy-only and random-reward runs"]
    if missing:
        notes.append(f"label study: no {', '.join(missing)} run")
    return rows, notes
