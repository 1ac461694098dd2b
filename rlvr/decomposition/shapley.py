"""The style × format × skill identity and its exact Shapley split (pure array math).

Per suite, pooled over items and samples, with styles r from a classifier (styles.py):

    π(r) share of responses in style r
    φ(r) share of style-r responses with a boxed final answer
    a(r) strict accuracy among those boxed responses
    accuracy = Σ_r π(r)·φ(r)·a(r)

From base (0) to trained (1) the change of f(π, φ, a) = Σ π·φ·a is split by the Shapley rule:
each factor vector's contribution is averaged over the six orders of switching the three
vectors from base to trained values. For one style and x the switched factor, y and z the
others, that average is Δx·(2·y0·z0 + 2·y1·z1 + y0·z1 + y1·z0) / 6, and the three
contributions add up to the change exactly:

    selection (π) + format correction (φ) + skill change (a) = accuracy₁ − accuracy₀

Selection splits further into degeneration fix = −Δπ(degenerate) × the base's accuracy over
its non-degenerate responses (what removing degenerate responses buys at the base's own
accuracy), and mode selection = selection − degeneration fix.

Undefined factors: where a style is absent on one side (π = 0), its φ and a take the other
side's values (so that factor's change is 0 for it); likewise a(r) where a side has no boxed
style-r response. Where both sides leave a factor undefined it is 0 (the style contributes
nothing to either accuracy). The rule changes no accuracy, so the identity stays exact.

Every function takes counts with any leading batch shape (..., S, 3) — [responses, boxed,
boxed and correct] per style — so the bootstrap passes all its resamples at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TERMS", "factors", "shapley_terms"]

# In the order the JSON and the tables list them; gain = the sum of the other four.
TERMS = ("gain", "format_correction", "degeneration_fix", "mode_selection", "skill_change")


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def factors(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(π, φ, a), each (..., S); NaN where undefined (φ of an absent style, a without boxes)."""
    counts = np.asarray(counts, dtype=float)
    responses, boxed, correct = counts[..., 0], counts[..., 1], counts[..., 2]
    total = responses.sum(axis=-1, keepdims=True)
    return _share(responses, total), _share(boxed, responses), _share(correct, boxed)


def _fill(side: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Undefined values take the other side's; undefined on both sides: 0."""
    return np.nan_to_num(np.where(np.isnan(side), other, side), nan=0.0)


def _contribution(dx, y0, y1, z0, z1) -> np.ndarray:
    return (dx * (2 * y0 * z0 + 2 * y1 * z1 + y0 * z1 + y1 * z0) / 6).sum(axis=-1)


def shapley_terms(base: np.ndarray, trained: np.ndarray, degenerate: int | None
                  ) -> dict[str, np.ndarray]:
    """The terms of TERMS (fractions, shape = the leading batch shape) from style counts.

    `degenerate` is the index of the degenerate style among the S styles (None: no such style,
    so the degeneration fix is 0 and all of selection is mode selection).
    """
    pi0, phi0, a0 = factors(base)
    pi1, phi1, a1 = factors(trained)
    pi0, pi1 = np.nan_to_num(pi0), np.nan_to_num(pi1)
    phi0, phi1 = _fill(phi0, phi1), _fill(phi1, phi0)
    a0, a1 = _fill(a0, a1), _fill(a1, a0)
    acc0 = (pi0 * phi0 * a0).sum(axis=-1)
    acc1 = (pi1 * phi1 * a1).sum(axis=-1)
    selection = _contribution(pi1 - pi0, phi0, phi1, a0, a1)
    format_correction = _contribution(phi1 - phi0, pi0, pi1, a0, a1)
    skill_change = _contribution(a1 - a0, pi0, pi1, phi0, phi1)
    if degenerate is None:
        degeneration_fix = np.zeros_like(acc0)
    else:
        pi0_deg = pi0[..., degenerate]
        acc0_deg = pi0_deg * phi0[..., degenerate] * a0[..., degenerate]
        rest = 1.0 - pi0_deg
        with np.errstate(invalid="ignore", divide="ignore"):
            # A base that is all degenerate has no accuracy to restore: the fix is 0 there.
            acc0_clean = np.where(rest > 0, (acc0 - acc0_deg) / np.where(rest > 0, rest, 1), 0.0)
        degeneration_fix = -(pi1[..., degenerate] - pi0_deg) * acc0_clean
    return {
        "gain": acc1 - acc0,
        "format_correction": format_correction,
        "degeneration_fix": degeneration_fix,
        "mode_selection": selection - degeneration_fix,
        "skill_change": skill_change,
    }
