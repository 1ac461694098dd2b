"""Post-saturation generalization: does held-out accuracy keep rising after the anchor is solved?

The saturation step is the first logged step from which the anchor's training accuracy (against
the TRUE gold, whatever the reward) stays ≥ `threshold` for `window` consecutive logged steps.
Held-out accuracy is then read at the last evaluation at or before that step and at the final
evaluation after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rlvr.rundir.read import Run

__all__ = ["HeldOut", "Saturation", "analyze_saturation", "saturation_step"]


@dataclass(frozen=True)
class HeldOut:
    suite: str
    before_step: int
    before_acc: float
    after_step: int | None
    after_acc: float | None
    best_after: float | None

    @property
    def change(self) -> float | None:
        return None if self.after_acc is None else self.after_acc - self.before_acc


@dataclass(frozen=True)
class Saturation:
    run: str
    anchor: str
    threshold: float
    window: int
    step: int | None
    curve: tuple[tuple[int, float], ...]
    heldout: tuple[HeldOut, ...]
    note: str | None


def saturation_step(curve: Sequence[tuple[int, float]], threshold: float = 0.95,
                    window: int = 5) -> int | None:
    """First step whose accuracy and the next `window − 1` logged ones are all ≥ threshold."""
    if window < 1:
        raise ValueError("window must be ≥ 1")
    run_length = 0
    for index, (_, acc) in enumerate(curve):
        run_length = run_length + 1 if acc >= threshold else 0
        if run_length == window:
            return curve[index - window + 1][0]
    return None


def _anchor_curve(run: Run) -> tuple[str, list[tuple[int, float]]]:
    keys = {k for m in run.metrics for k in m.train_acc}
    if len(run.examples) == 1 and run.examples[0] in keys:
        anchor = run.examples[0]
    elif len(keys) == 1:
        anchor = next(iter(keys))
    else:
        curve = [(m.step, m.train_acc_mean) for m in run.metrics if m.train_acc_mean is not None]
        return f"mean of {len(keys)} examples", curve
    return anchor, [(m.step, m.train_acc[anchor]) for m in run.metrics if anchor in m.train_acc]


def analyze_saturation(run: Run, threshold: float = 0.95, window: int = 5) -> Saturation:
    if not run.metrics:
        return Saturation(run.name, "", threshold, window, None, (), (),
                          "no metrics.jsonl: the saturation step cannot be found")
    anchor, curve = _anchor_curve(run)
    if not curve:
        return Saturation(run.name, anchor, threshold, window, None, (), (),
                          "metrics.jsonl has no train_acc values")
    step = saturation_step(curve, threshold, window)
    if step is None:
        return Saturation(run.name, anchor, threshold, window, None, tuple(curve), (),
                          f"train accuracy never stayed ≥ {threshold:g} for {window} steps")
    before_steps = [s for s in run.evals if s <= step]
    after_steps = [s for s in run.evals if s > step]
    if not before_steps:
        return Saturation(run.name, anchor, threshold, window, step, tuple(curve), (),
                          f"no evaluation at or before step {step}")
    before = max(before_steps)
    after = max(after_steps) if after_steps else None
    heldout = []
    for suite in run.evals[before].suites:
        before_acc = run.evals[before].accuracy(suite)
        if before_acc is None:
            continue
        later = [run.evals[s].accuracy(suite) for s in after_steps]
        later = [a for a in later if a is not None]
        after_acc = run.evals[after].accuracy(suite) if after is not None else None
        heldout.append(HeldOut(suite, before, before_acc, after if after_acc is not None else None,
                               after_acc, max(later) if later else None))
    note = None if after is not None else f"no evaluation after step {step}"
    return Saturation(run.name, anchor, threshold, window, step, tuple(curve), tuple(heldout),
                      note)
