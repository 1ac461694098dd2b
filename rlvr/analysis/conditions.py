"""Conditions (reward modes, each possibly run with several seeds) and contrasts between them.

A condition's accuracy and gain: with one run, the run's own item-bootstrap interval; with
several seeds, the mean over seeds, a two-level (seeds × items) interval, and the per-seed values.
A contrast (e.g. outcome − format-only) compares two conditions' trained accuracies: runs are
paired by seed; one pair is a paired item bootstrap over the items both evaluated, several pairs
the two-level (seeds × items) bootstrap over the per-seed differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rlvr.core.stats import Estimate, paired_gain, two_level
from rlvr.rundir.read import EvalStep

__all__ = ["ConditionResult", "Contrast", "condition_rows", "contrast", "contrasts", "paired_items",
           "seed_or_items"]


@dataclass(frozen=True)
class Member:
    """What a condition needs of one run: its name, seed, final evaluation and estimates."""

    run: str
    seed: int | None
    step: EvalStep
    accuracy: Estimate
    gain: Estimate
    n_items: int


@dataclass(frozen=True)
class ConditionResult:
    """What one condition (a row of rlvr.core.ablations) measured, over its seeds."""

    role: str
    runs: tuple[str, ...]
    seeds: tuple[int | None, ...]
    accuracy: Estimate
    gain: Estimate
    n_items: int


@dataclass(frozen=True)
class Contrast:
    left: str
    right: str
    difference: Estimate  # accuracy(left) − accuracy(right), fractions
    n_items: int
    pairs: int


def seed_or_items(estimates: Sequence[Estimate]) -> Estimate:
    """One run: its own (item) interval. Several: the mean over seeds with the two-level
    (seeds × items) interval of `rlvr.core.stats.two_level`."""
    return two_level(estimates)


def condition_rows(members: dict[str, list[Member]]) -> list[ConditionResult]:
    return [ConditionResult(role, tuple(m.run for m in group), tuple(m.seed for m in group),
                      seed_or_items([m.accuracy for m in group]),
                      seed_or_items([m.gain for m in group]),
                      min(m.n_items for m in group))
            for role, group in members.items() if group]


def paired_items(left: EvalStep, right: EvalStep, suites: Sequence[str] | None = None
                 ) -> tuple[list[list[bool]], list[list[bool]]]:
    """Per-item strict correctness of both sides on the items they share (suites in common,
    or those named), item i of each list being the same item."""
    names = sorted(set(left.records) & set(right.records)
                   if suites is None else set(suites) & set(left.records) & set(right.records))
    a_out, b_out = [], []
    for suite in names:
        a_items, b_items = _by_item(left.records[suite]), _by_item(right.records[suite])
        for item in sorted(set(a_items) & set(b_items)):
            a_out.append(a_items[item])
            b_out.append(b_items[item])
    return a_out, b_out


def _by_item(records) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for record in records:
        out.setdefault(record.id, []).append(record.correct_strict)
    return out


def _pairs(left: list[Member], right: list[Member]) -> list[tuple[Member, Member]]:
    """Runs paired by seed; one run on each side pairs whatever its seed."""
    if len(left) == 1 and len(right) == 1:
        return [(left[0], right[0])]
    by_seed = {m.seed: m for m in right}
    return [(m, by_seed[m.seed]) for m in left if m.seed in by_seed]


def contrast(left_role: str, left: list[Member], right_role: str, right: list[Member]
             ) -> Contrast | None:
    pairs = _pairs(left, right)
    if not pairs:
        return None
    diffs, n_items = [], None
    for a, b in pairs:
        b_items, a_items = paired_items(b.step, a.step)
        if not a_items:
            continue
        diffs.append(paired_gain(b_items, a_items))
        n_items = len(a_items) if n_items is None else min(n_items, len(a_items))
    if not diffs:
        return None
    return Contrast(left_role, right_role, seed_or_items(diffs), n_items or 0, len(diffs))


def contrasts(members: dict[str, list[Member]]) -> list[Contrast]:
    """Every pair of conditions, in the order given (earlier minus later)."""
    roles = [r for r, group in members.items() if group]
    out = []
    for i, left in enumerate(roles):
        for right in roles[i + 1:]:
            found = contrast(left, members[left], right, members[right])
            if found is not None:
                out.append(found)
    return out
