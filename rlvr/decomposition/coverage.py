"""Coverage, the classifier-free check: does the trained model solve anything the base never does?

With k samples per item on both sides, on the items both evaluated (matched by suite and id):
- pass@k curves, k = 1, 2, 4, … up to the fewest samples any matched item has on either side,
  by the unbiased estimator (rlvr.evaluation.metrics.pass_at_k), each point with a 95% paired
  item-bootstrap interval (the same resampled items on both sides, seeded), and the
  difference trained − base with its interval;
- `crossing_k`: the smallest k at which the trained curve is no longer above the base's
  (difference ≤ 0), and `not_above_k`: the smallest k at which the difference's interval
  reaches 0 (no longer measurably above); None when the trained curve stays above;
- the items solved only by one side (some sample right on one side, none on the other), each
  with the samples behind "never solved": the other side's sample count and the 95% upper bound
  on its per-sample solve rate given zero successes, 1 − 0.05^(1/n).
The field's reading: RLVR that only selects among what the base can do lifts pass@1 while
pass@k at large k stays equal or drops (the curves cross) and few items are trained-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlvr.core.stats import N_RESAMPLES, Estimate, percentile_interval, resample_weights
from rlvr.decomposition.comparable import MIN_INTERVAL_ITEMS
from rlvr.evaluation.metrics import pass_at_k, report_ks
from rlvr.rundir.read import EvalStep

__all__ = ["Coverage", "OnlySolved", "coverage"]

_LISTED = 20  # items listed per "solved only by" side (all are counted)


@dataclass(frozen=True)
class OnlySolved:
    suite: str
    id: str
    correct: int  # right samples on the side that solves it
    samples: int
    other_samples: int  # samples of the side that never solves it
    other_rate_upper95: float

    def to_json(self) -> dict:
        return {"suite": self.suite, "id": self.id, "correct": self.correct,
                "samples": self.samples, "other_samples": self.other_samples,
                "other_rate_upper95": self.other_rate_upper95}


@dataclass(frozen=True)
class Coverage:
    n_items: int
    ks: tuple[int, ...]
    base: tuple[Estimate, ...]
    trained: tuple[Estimate, ...]
    difference: tuple[Estimate, ...]
    crossing_k: int | None
    not_above_k: int | None
    only_trained: tuple[OnlySolved, ...]
    only_base: tuple[OnlySolved, ...]

    def to_json(self) -> dict:
        def side(items: Sequence[OnlySolved]) -> dict:
            return {"n": len(items), "items": [i.to_json() for i in items[:_LISTED]]}

        return {"n_items": self.n_items, "k": list(self.ks),
                "base": [e.points() for e in self.base],
                "trained": [e.points() for e in self.trained],
                "difference": [e.points() for e in self.difference],
                "crossing_k": self.crossing_k, "not_above_k": self.not_above_k,
                "only_trained": side(self.only_trained), "only_base": side(self.only_base)}


def _counts(step: EvalStep) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for suite, records in step.records.items():
        for r in records:
            n_c = out.setdefault((suite, r.id), [0, 0])
            n_c[0] += 1
            n_c[1] += int(r.correct_strict)
    return {key: (n, c) for key, (n, c) in out.items()}


def _estimates(per_item: np.ndarray, weights: np.ndarray) -> Estimate:
    n = per_item.shape[0]
    value = float(per_item.mean())
    if n < MIN_INTERVAL_ITEMS:
        return Estimate(value, None, None, "none", n)
    boot = weights @ per_item / n
    low, high = percentile_interval(boot)
    # The resamples travel with the estimate: coverage of several seeds against one base
    # shares its item draws, so rlvr.core.stats.two_level can combine them.
    return Estimate(value, float(low), float(high), "items", n, boot=boot)


def _only(keys, solver, other) -> tuple[OnlySolved, ...]:
    out = []
    for key in keys:
        (n, c), (m, d) = solver[key], other[key]
        if c > 0 and d == 0:
            out.append(OnlySolved(key[0], key[1], c, n, m, 1.0 - 0.05 ** (1.0 / m)))
    return tuple(sorted(out, key=lambda o: (-o.correct / o.samples, o.suite, o.id)))


def coverage(base: EvalStep, trained: EvalStep, *, seed: int = 0,
             n_resamples: int = N_RESAMPLES) -> Coverage | None:
    """The coverage of `trained` against `base` on their shared items; None without any."""
    b, t = _counts(base), _counts(trained)
    keys = sorted(set(b) & set(t))
    if not keys:
        return None
    k_max = min(min(b[key][0] for key in keys), min(t[key][0] for key in keys))
    ks = tuple(report_ks(k_max)) if k_max > 1 else (1,)
    weights = resample_weights(len(keys), n_resamples, seed).astype(float)
    curves: dict[str, list[Estimate]] = {"base": [], "trained": [], "difference": []}
    for k in ks:
        pb = np.array([pass_at_k(*b[key], k) for key in keys])
        pt = np.array([pass_at_k(*t[key], k) for key in keys])
        for name, values in (("base", pb), ("trained", pt), ("difference", pt - pb)):
            curves[name].append(_estimates(values, weights))
    diff = curves["difference"]
    crossing = next((k for k, d in zip(ks, diff, strict=True) if d.value <= 0), None)
    not_above = next((k for k, d in zip(ks, diff, strict=True)
                      if not d.has_interval or d.low <= 0), None)
    return Coverage(len(keys), ks, tuple(curves["base"]), tuple(curves["trained"]), tuple(diff),
                    crossing, not_above, _only(keys, t, b), _only(keys, b, t))
