"""The ablation registry: one table of the study's training conditions.

Each row is one condition under one name: the reward mode (and wrong-label kind) it trains
on, the run name the demo gives it, the role the analysis shows it as, whether the report
reads the outcome run against it as a control, its row in the label study, the preset overlay
`rlvr.rl.presets` lays on for it, and the claims it tests (the ids of the claims checklist).
The tuple's order is the display order. The demo, the analysis, the claims checklist, the
config and the verl export read this table; nothing else lists the conditions.

Claim ids: C1 the gain is selection among modes the base has; C2 it transfers across problem
categories; C3 test accuracy keeps rising after training accuracy saturates; C4 a format-only
reward gives a large part of the gain; C5 entropy-only training gives a short-lived gain; C6
an unguessable wrong label behaves like entropy-only; C7 a guessable wrong label can hurt;
C10 (beyond the paper) random rewards gain through GRPO's clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONDITIONS", "Condition", "condition", "condition_of", "demo_conditions",
           "label_study_rows", "overlay_of"]


@dataclass(frozen=True)
class Condition:
    name: str  # run name (the demo's folder) and the key every reader uses
    reward_mode: str  # reward.mode
    role: str  # how reports show it
    wrong_label_kind: str | None = None
    overlay: str | None = None  # preset overlay (rlvr.rl.presets.OVERLAYS) the condition needs
    claims: tuple[str, ...] = ()
    control: bool = False  # a control the report reads the outcome run against
    label_study: tuple[int, str] | None = None  # (row, title) in the label study, if a row
    # A variant of another row: the preset overlay that marks it (recorded in the run's
    # `overlays`), so a variant is never pooled with the main condition of its reward mode.
    variant: str | None = None
    # Where it runs: "demo" (every anchor of `rlvr demo`), "C10" (`rlvr demo --claim C10`), or
    # "ablation" (a named ablation kept for users; no study command runs it).
    study: str = "demo"


# In display order: reports list runs, and the demo trains them, in this order (an outcome run
# first: the other conditions are read against it).
CONDITIONS: tuple[Condition, ...] = (
    Condition("outcome", "outcome", "outcome", claims=("C1", "C2", "C3", "C4"),
              label_study=(1, "correct label")),
    Condition("format-only", "format", "format-only", claims=("C4",), control=True),
    Condition("entropy-only", "none", "entropy-only", overlay="entropy_only",
              claims=("C5", "C6"), control=True, label_study=(4, "entropy-only (no reward)")),
    Condition("random", "random", "random", claims=("C5",), control=True,
              label_study=(5, "random reward")),
    Condition("wrong-label-guessable", "wrong_label", "guessable wrong label",
              wrong_label_kind="guessable", claims=("C7",),
              label_study=(2, "guessable wrong label")),
    Condition("wrong-label-unguessable", "wrong_label", "unguessable wrong label",
              wrong_label_kind="unguessable", claims=("C6",),
              label_study=(3, "unguessable wrong label")),
    # C6's matched-settings check: the unguessable label with entropy-only's KL and weight decay.
    Condition("wrong-label-unguessable-matched", "wrong_label",
              "unguessable wrong label, entropy-only's KL and weight decay",
              wrong_label_kind="unguessable", claims=("C6",), variant="matched_entropy"),
    Condition("random-clip", "random", "random reward, 4 mini-batches, clip 0.2",
              claims=("C10",), variant="minibatch_clip", study="C10"),
    Condition("random-noclip", "random", "random reward, 4 mini-batches, no clipping",
              claims=("C10",), variant="minibatch_noclip", study="C10"),
    Condition("outcome-guard", "outcome", "outcome with the update guard",
              variant="update_guard", study="ablation"),
)


def condition(name: str) -> Condition:
    """The condition called `name` (KeyError names the known ones)."""
    for c in CONDITIONS:
        if c.name == name:
            return c
    raise KeyError(f"no condition {name!r}; known: {', '.join(c.name for c in CONDITIONS)}")


def condition_of(reward_mode: str | None, wrong_label_kind: str | None = None,
                 overlays: tuple[str, ...] | list[str] = ()) -> Condition | None:
    """The condition a run's `[reward]` table (and the overlays it recorded) is, or None (no
    mode, or a label without a kind). A variant's overlay picks the variant's row."""
    found = None
    for c in CONDITIONS:
        if c.reward_mode == reward_mode and c.wrong_label_kind == wrong_label_kind:
            if c.variant is None and found is None:
                found = c
            elif c.variant is not None and c.variant in overlays:
                return c
    return found


def overlay_of(reward_mode: str | None) -> str | None:
    """The preset overlay a reward mode brings (the same for every wrong-label kind)."""
    return next((c.overlay for c in CONDITIONS if c.reward_mode == reward_mode
                 and c.variant is None), None)


def demo_conditions() -> tuple[Condition, ...]:
    """The rows `rlvr demo` trains on every anchor, in display order."""
    return tuple(c for c in CONDITIONS if c.study == "demo")


def label_study_rows() -> tuple[tuple[str, str], ...]:
    """(role, row title) of the label study, in its row order."""
    rows = sorted((c.label_study, c.role) for c in CONDITIONS if c.label_study)
    return tuple((role, title) for (_, title), role in rows)
