"""Where did the gain come from: per-item transitions between a base and a trained evaluation.

Each record is put in one class from the grader's fields (the same `Grade` the rewards read):

    correct          correct_strict
    formatted_wrong  boxed, not correct
    format_failure   unboxed / empty_box / no_answer (includes lenient-right-but-unboxed)
    repetition       the response looped
    truncated        the response hit the length limit

Per suite, the accuracy gain splits exactly into

    gain = format_correction + reasoning_selection + degeneration_fix − losses

format_correction   base failed on format, trained correct
reasoning_selection base boxed a wrong answer, trained correct
degeneration_fix    base looped or was truncated, trained correct
losses              base correct, trained not

With several samples per item, every (base sample, trained sample) pair of an item carries weight
1 / (k_base · k_trained), so an item contributes at most 1 and the identity still holds.

Across runs, the waterfall reads the reward modes: base → no-signal controls (entropy-only,
random: exploration and perturbation) → format-only → outcome, with outcome − format-only as
the residual "beyond format correction".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rlvr.analysis.rundir import EvalRecord, EvalStep

__all__ = [
    "CLASSES",
    "CLASS_LABELS",
    "SuiteDecomposition",
    "WATERFALL_ROLES",
    "WaterfallRow",
    "classify",
    "decompose",
    "item_transitions",
    "mean_row",
    "pool",
    "waterfall",
]

CLASSES = ("correct", "formatted_wrong", "format_failure", "repetition", "truncated")
CLASS_LABELS = {
    "correct": "correct",
    "formatted_wrong": "formatted but wrong",
    "format_failure": "format failure",
    "repetition": "repetition",
    "truncated": "truncated",
}
_FORMAT_FAILURES = frozenset({"unboxed", "empty_box", "no_answer"})
_DEGENERATE = frozenset({"repetition", "truncated"})


def classify(record: EvalRecord) -> str:
    if record.correct_strict:
        return "correct"
    if record.format in _FORMAT_FAILURES:
        return "format_failure"
    if record.format == "repetition":
        return "repetition"
    if record.format == "truncated":
        return "truncated"
    return "formatted_wrong"


@dataclass(frozen=True)
class SuiteDecomposition:
    """Accuracy-point split of one suite's gain; `transitions` are item counts (base, trained)."""

    suite: str
    n_items: int
    base_acc: float
    trained_acc: float
    format_correction: float
    reasoning_selection: float
    degeneration_fix: float
    losses: float
    transitions: dict[tuple[str, str], float] = field(repr=False)

    @property
    def gain(self) -> float:
        return self.trained_acc - self.base_acc

    def class_rates(self, side: str) -> dict[str, float]:
        """Fraction of items in each class on the `base` or `trained` side."""
        index = 0 if side == "base" else 1
        rates = dict.fromkeys(CLASSES, 0.0)
        for pair, count in self.transitions.items():
            rates[pair[index]] += count / max(self.n_items, 1)
        return rates


def _by_item(records: Sequence[EvalRecord]) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    for record in records:
        items.setdefault(record.id, []).append(classify(record))
    return items


def _split(suite: str, base: dict[str, list[str]], trained: dict[str, list[str]],
           ids: Sequence[str]) -> SuiteDecomposition:
    transitions = {(a, b): 0.0 for a in CLASSES for b in CLASSES}
    for item in ids:
        b_classes, t_classes = base[item], trained[item]
        weight = 1.0 / (len(b_classes) * len(t_classes))
        for b in b_classes:
            for t in t_classes:
                transitions[(b, t)] += weight
    n = len(ids)

    def share(sources: frozenset[str] | set[str], target: str = "correct") -> float:
        return sum(transitions[(s, target)] for s in sources) / n

    losses = sum(transitions[("correct", t)] for t in CLASSES if t != "correct") / n
    return SuiteDecomposition(
        suite=suite, n_items=n,
        base_acc=sum(transitions[("correct", t)] for t in CLASSES) / n,
        trained_acc=sum(transitions[(b, "correct")] for b in CLASSES) / n,
        format_correction=share({"format_failure"}),
        reasoning_selection=share({"formatted_wrong"}),
        degeneration_fix=share(_DEGENERATE),
        losses=losses, transitions=transitions,
    )


def decompose(base: EvalStep, trained: EvalStep, *, run: str = "run",
              base_name: str = "base") -> tuple[list[SuiteDecomposition], list[str]]:
    """Split each common suite's gain; notes say which suites or items could not be compared."""
    notes: list[str] = []
    out = []
    for suite in sorted(set(base.records) | set(trained.records)):
        if suite not in trained.records:
            notes.append(f"{suite}: evaluated for {base_name} but not for {run} at step "
                         f"{trained.step}; not compared")
            continue
        if suite not in base.records:
            notes.append(f"{suite}: evaluated for {run} but not for {base_name}; not compared")
            continue
        b_items, t_items = _by_item(base.records[suite]), _by_item(trained.records[suite])
        common = sorted(set(b_items) & set(t_items))
        if not common:
            notes.append(f"{suite}: {base_name} and {run} share no item ids; not compared")
            continue
        if len(common) != len(b_items) or len(common) != len(t_items):
            notes.append(f"{suite}: {base_name} has {len(b_items)} items, {run} has "
                         f"{len(t_items)}; compared on the {len(common)} they share")
        out.append(_split(suite, b_items, t_items, common))
    return out, notes


def item_transitions(base: EvalStep, trained: EvalStep
                     ) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(suite, id, base classes, trained classes) per shared item, one class per sample."""
    out = []
    for suite in sorted(set(base.records) & set(trained.records)):
        b_items, t_items = _by_item(base.records[suite]), _by_item(trained.records[suite])
        for item in sorted(set(b_items) & set(t_items)):
            out.append((suite, item, tuple(b_items[item]), tuple(t_items[item])))
    return out


def pool(rows: Sequence[SuiteDecomposition], name: str = "all suites") -> SuiteDecomposition:
    """Item-weighted total over suites (each item counts once, whatever its suite)."""
    n = sum(r.n_items for r in rows)
    if n == 0:
        raise ValueError("nothing to pool")
    transitions = {(a, b): sum(r.transitions[(a, b)] for r in rows)
                   for a in CLASSES for b in CLASSES}

    def weighted(attr: str) -> float:
        return sum(getattr(r, attr) * r.n_items for r in rows) / n

    return SuiteDecomposition(
        suite=name, n_items=n, base_acc=weighted("base_acc"), trained_acc=weighted("trained_acc"),
        format_correction=weighted("format_correction"),
        reasoning_selection=weighted("reasoning_selection"),
        degeneration_fix=weighted("degeneration_fix"), losses=weighted("losses"),
        transitions=transitions,
    )


# --- the waterfall across runs ----------------------------------------------------------------

WATERFALL_ROLES = ("entropy-only", "random", "format-only", "outcome")


@dataclass(frozen=True)
class WaterfallRow:
    """Accuracy of each stage on one suite (None: no such run, or it lacks this suite)."""

    suite: str
    n_items: int
    base: float
    levels: dict[str, float | None]  # keyed by WATERFALL_ROLES

    @property
    def no_signal(self) -> float | None:
        present = [self.levels[r] for r in ("entropy-only", "random") if self.levels[r] is not None]
        return sum(present) / len(present) if present else None

    @property
    def residual(self) -> float | None:
        outcome, fmt = self.levels["outcome"], self.levels["format-only"]
        return None if outcome is None or fmt is None else outcome - fmt

    def stages(self) -> list[tuple[str, float]]:
        """(label, level) for the stages present, in waterfall order, starting at base."""
        out = [("base", self.base)]
        for label, value in (("exploration / perturbation", self.no_signal),
                             ("format-only", self.levels["format-only"]),
                             ("outcome", self.levels["outcome"])):
            if value is not None:
                out.append((label, value))
        return out


def _acc_on(records: Sequence[EvalRecord], ids: set[str]) -> float:
    per_item: dict[str, list[bool]] = {}
    for record in records:
        if record.id in ids:
            per_item.setdefault(record.id, []).append(record.correct_strict)
    return sum(sum(v) / len(v) for v in per_item.values()) / len(per_item)


def waterfall(base: EvalStep, groups: Mapping[str, Sequence[tuple[str, EvalStep]]]
              ) -> tuple[list[WaterfallRow], list[str]]:
    """One row per base suite; each role's level is the mean over that role's runs.

    Every level of a row is measured on the same items: those the base and every participating
    run share, so a run evaluated on a subset shrinks the row rather than skewing one bar.
    """
    notes: list[str] = []
    rows = []
    present_roles = [r for r in WATERFALL_ROLES if groups.get(r)]
    missing = [r for r in WATERFALL_ROLES if not groups.get(r)]
    if not present_roles:
        return [], ["waterfall: no entropy-only, random, format-only or outcome run to compare"]
    if missing:
        notes.append(f"waterfall: no {', '.join(missing)} run; "
                     "those stages are left out")
    for suite in sorted(base.records):
        ids = {r.id for r in base.records[suite]}
        members: dict[str, list[tuple[str, EvalStep]]] = {}
        for role in present_roles:
            for name, step in groups[role]:
                if suite not in step.records:
                    notes.append(f"waterfall {suite}: {name} has no {suite} evaluation; "
                                 f"left out of the {role} level")
                    continue
                ids &= {r.id for r in step.records[suite]}
                members.setdefault(role, []).append((name, step))
        if not ids:
            notes.append(f"waterfall {suite}: the runs share no items with the base; skipped")
            continue
        if len(ids) < len({r.id for r in base.records[suite]}):
            notes.append(f"waterfall {suite}: measured on the {len(ids)} items every run shares")
        levels: dict[str, float | None] = dict.fromkeys(WATERFALL_ROLES)
        for role, steps in members.items():
            values = [_acc_on(step.records[suite], ids) for _, step in steps]
            levels[role] = sum(values) / len(values)
        rows.append(WaterfallRow(suite=suite, n_items=len(ids),
                                 base=_acc_on(base.records[suite], ids), levels=levels))
    return rows, notes


def mean_row(rows: Sequence[WaterfallRow]) -> WaterfallRow | None:
    """The suite average (the paper's "average" column); a level only where every suite has it."""
    if len(rows) < 2:
        return None
    levels: dict[str, float | None] = {}
    for role in WATERFALL_ROLES:
        values = [r.levels[role] for r in rows]
        levels[role] = None if any(v is None for v in values) else sum(values) / len(values)
    return WaterfallRow(suite="average", n_items=sum(r.n_items for r in rows),
                        base=sum(r.base for r in rows) / len(rows), levels=levels)
