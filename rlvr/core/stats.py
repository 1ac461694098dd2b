"""How sure we are: 95% intervals over items (bootstrap) and over seeds (t).

Items are the unit of resampling. An evaluation holds k responses per item (k = 1 for greedy),
and an item's responses stay together in a resample: what varies between evaluations of the
same model is which items the suite drew, not only which samples. Comparing two evaluations on
the same items is *paired*: one resample draws the same items for both sides.

The bootstrap is vectorised: a resample draws n item indices with replacement, kept as a row of
counts (how often each item is drawn), and any statistic built from
per-item sums is a matrix product `weights @ counts`, so 1,000 resamples of a 500-item suite
cost one (1000 × 500) product, not a Python loop.

Across seeds (several runs of one condition) the interval is Student's t over the per-seed
values (scipy.stats.ttest_1samp's confidence interval): the item noise of each run is already
inside its seed-to-seed spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CONFIDENCE",
    "N_RESAMPLES",
    "Estimate",
    "across_seeds",
    "bonferroni",
    "difference",
    "item_accuracy",
    "paired_gain",
    "percentile_interval",
    "resample_weights",
    "two_level",
    "within_noise",
]

N_RESAMPLES = 1_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A value (a fraction, e.g. accuracy 0.41) with its 95% interval and how it was made.

    `method`: "items" (bootstrap over `n` items), "seeds" (t over `n` seeds, values in
    `per_seed`) or "none" (one value, no interval: e.g. one seed of a quantity without items).
    """

    value: float
    low: float | None
    high: float | None
    method: str
    n: int
    per_seed: tuple[float, ...] = ()
    # The item-bootstrap resamples behind an "items" interval (same seed and items → the same
    # draws in every run), which `two_level` combines across seeds.
    boot: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def within_noise(self) -> bool:
        """The interval contains 0 (a gain we cannot tell from no change)."""
        return within_noise(self.low, self.high)

    def points(self) -> dict:
        """`{"value": pts, "ci": [lo, hi] | None}` in accuracy points (0-100)."""
        ci = [100 * self.low, 100 * self.high] if self.has_interval else None
        return {"value": 100 * self.value, "ci": ci}

    def scaled(self, factor: float) -> Estimate:
        low, high = (None, None) if not self.has_interval else sorted(
            (factor * self.low, factor * self.high))
        return Estimate(factor * self.value, low, high, self.method, self.n,
                        tuple(factor * v for v in self.per_seed))


def within_noise(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and low <= 0.0 <= high


def resample_weights(n_items: int, n_resamples: int = N_RESAMPLES,
                     rng: np.random.Generator | int = 0) -> np.ndarray:
    """(n_resamples, n_items) counts: row b says how often each item is in resample b."""
    if n_items < 1:
        raise ValueError("a bootstrap needs at least one item")
    rng = np.random.default_rng(rng)
    picks = rng.integers(0, n_items, size=(n_resamples, n_items))  # item indices, with replacement
    offsets = (np.arange(n_resamples) * n_items)[:, None]
    counts = np.bincount((picks + offsets).ravel(), minlength=n_resamples * n_items)
    return counts.reshape(n_resamples, n_items)


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0 (the resamples); NaN resamples are ignored."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def _ratio_interval(weights: np.ndarray, hits: np.ndarray, totals: np.ndarray
                    ) -> tuple[float, float, float]:
    value = hits.sum() / totals.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (weights @ hits) / (weights @ totals)
    low, high = percentile_interval(boot)
    return float(value), float(low), float(high)


def item_accuracy(correct: Sequence[Sequence[bool]], *, seed: int = 0,
                  n_resamples: int = N_RESAMPLES) -> Estimate:
    """Accuracy over every response (avg@k when each item has k), bootstrapped over items."""
    hits = np.array([sum(item) for item in correct], dtype=float)
    totals = np.array([len(item) for item in correct], dtype=float)
    weights = resample_weights(len(hits), n_resamples, seed)
    value, low, high = _ratio_interval(weights, hits, totals)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (weights @ hits) / (weights @ totals)
    return Estimate(value, low, high, "items", len(hits), boot=boot)


def paired_gain(base: Sequence[Sequence[bool]], trained: Sequence[Sequence[bool]], *,
                seed: int = 0, n_resamples: int = N_RESAMPLES) -> Estimate:
    """Accuracy of `trained` − `base` on the same items (item i of both lists is one item),
    with a paired bootstrap: each resample draws the same items for both sides."""
    if len(base) != len(trained):
        raise ValueError("a paired comparison needs the same items on both sides")
    weights = resample_weights(len(base), n_resamples, seed)
    hits = np.array([[sum(b), sum(t)] for b, t in zip(base, trained, strict=True)], dtype=float)
    totals = np.array([[len(b), len(t)] for b, t in zip(base, trained, strict=True)],
                      dtype=float)
    value = hits[:, 1].sum() / totals[:, 1].sum() - hits[:, 0].sum() / totals[:, 0].sum()
    boot = (weights @ hits) / (weights @ totals)  # (B, 2)
    low, high = percentile_interval(boot[:, 1] - boot[:, 0])
    return Estimate(float(value), float(low), float(high), "items", len(base),
                    boot=boot[:, 1] - boot[:, 0])


def across_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean over seeds with a t-interval (needs two or more seeds for an interval)."""
    from scipy import stats

    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        raise ValueError("no values to average")
    mean = float(data.mean())
    if data.size < 2:
        return Estimate(mean, None, None, "none", 1, tuple(data.tolist()))
    if np.ptp(data) == 0:  # scipy's interval is NaN for identical values; the spread is 0
        return Estimate(mean, mean, mean, "seeds", int(data.size), tuple(data.tolist()))
    ci = stats.ttest_1samp(data, 0.0).confidence_interval(confidence)
    return Estimate(mean, float(ci.low), float(ci.high), "seeds", int(data.size),
                    tuple(data.tolist()))


def two_level(estimates: Sequence[Estimate], *, confidence: float = CONFIDENCE, seed: int = 0
              ) -> Estimate:
    """Mean over seeds of per-run item estimates, with an interval from both noise sources.

    Each resample b draws the seeds with replacement (multinomial counts) and takes, for every
    drawn seed, its own item resample b; the runs' item resamples share their draws (same
    items, same bootstrap seed), so resample b is one draw of items for every seed and the
    spread holds the items' noise (common to all seeds) and the seeds' (training) noise. With
    few seeds the seed part is resampled from few values, so the interval is widened to
    contain the t-interval over the seed values (the more cautious end of each side).
    Runs without matching resamples fall back to `across_seeds`.
    """
    if len(estimates) == 1:
        return estimates[0]
    boots = [e.boot for e in estimates]
    if any(b is None for b in boots) or len({len(b) for b in boots}) != 1:
        seeds = across_seeds([e.value for e in estimates], confidence)
        if seeds.has_interval and seeds.low == seeds.high:
            # Identical seeds and no item resamples: no noise was measured, which is not a
            # zero-width interval.
            return Estimate(seeds.value, None, None, "none", seeds.n, seeds.per_seed)
        return seeds
    matrix = np.stack(boots)  # (S, B)
    n_seeds, n_boot = matrix.shape
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=n_boot)  # (B, S)
    with np.errstate(invalid="ignore"):
        resampled = (counts * matrix.T).sum(axis=1) / n_seeds
    low, high = percentile_interval(resampled, confidence)
    values = [e.value for e in estimates]
    seeds = across_seeds(values, confidence)
    if seeds.has_interval:
        low, high = min(float(low), seeds.low), max(float(high), seeds.high)
    return Estimate(float(np.mean(values)), float(low), float(high), "seeds×items", n_seeds,
                    tuple(values), boot=resampled)


def bonferroni(confidence: float, comparisons: int) -> float:
    """The per-comparison confidence that keeps `comparisons` intervals jointly at `confidence`."""
    return 1 - (1 - confidence) / max(1, comparisons)


def difference(a: Estimate, b: Estimate, confidence: float = CONFIDENCE) -> Estimate:
    """a − b for two item estimates whose resamples share their item draws (same items, same
    bootstrap seed), e.g. two gains measured against different bases on the same items."""
    if a.boot is None or b.boot is None or len(a.boot) != len(b.boot):
        raise ValueError("a difference needs both estimates' matching item resamples")
    boot = a.boot - b.boot
    low, high = percentile_interval(boot, confidence)
    return Estimate(a.value - b.value, float(low), float(high), "items", min(a.n, b.n),
                    boot=boot)
