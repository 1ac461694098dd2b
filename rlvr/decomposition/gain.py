"""Where did the gain come from: selection, format correction and skill change, with intervals.

Each response gets a reasoning style from a classifier (styles.py: `organism` markers or the
`generic` text proxy) and the grader's format; per suite the change in strict accuracy from a
base evaluation to a trained one splits exactly (shapley.py) into

    gain = format correction + degeneration fix + mode selection + skill change

Records: both sides must use one decoding (sampled when both have samples, else greedy; the
loader's `auto` picks sampled first), and items are matched by id (the intersection; a note
gives its size). A response counts as boxed when the grader read a final box (or judged it
strictly correct, which needs one), so accuracy = Σ π·φ·a is the strict avg@k exactly.

Intervals: a paired bootstrap over items (stats.py): each resample draws the same items for
base and trained, an item's k responses together, 1,000 resamples, percentile, seeded. The
`all` row is the item-weighted mean of the suites' terms, resampled within each suite. A row of
fewer than `comparable.MIN_INTERVAL_ITEMS` items has its point value only (no interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlvr.core.stats import N_RESAMPLES, Estimate, percentile_interval, resample_weights
from rlvr.decomposition.comparable import MIN_INTERVAL_ITEMS
from rlvr.decomposition.shapley import TERMS, factors, shapley_terms
from rlvr.decomposition.styles import DEGENERATE, STYLES, get_classifier
from rlvr.rundir.read import EvalRecord, EvalStep

__all__ = ["TERMS", "Decomposition", "GainDecomposition", "StyleShares", "decompose",
           "decoding_of", "is_boxed"]


@dataclass(frozen=True)
class StyleShares:
    """π, φ, a of one style on each side (None: undefined, e.g. a without boxed responses)."""

    style: str
    base: tuple[float | None, float | None, float | None]
    trained: tuple[float | None, float | None, float | None]

    def to_json(self) -> dict:
        def side(values):
            return dict(zip(("pi", "phi", "a"), values, strict=True))

        return {"base": side(self.base), "trained": side(self.trained)}


@dataclass(frozen=True)
class Decomposition:
    """One suite (or `all`): accuracies, the TERMS as Estimates (fractions), style shares."""

    suite: str
    n_items: int
    k: int
    base_acc: Estimate
    trained_acc: Estimate
    terms: dict[str, Estimate]
    styles: tuple[StyleShares, ...]

    @property
    def gain(self) -> Estimate:
        return self.terms["gain"]

    selection: Estimate | None = None  # degeneration fix + mode selection, with its interval

    def to_json(self) -> dict:
        out = {t: self.terms[t].points() for t in TERMS}
        out["styles"] = {s.style: s.to_json() for s in self.styles}
        return out


@dataclass(frozen=True)
class GainDecomposition:
    classifier: str
    decoding: str
    suites: tuple[Decomposition, ...]
    all: Decomposition

    @property
    def n_items(self) -> int:
        return self.all.n_items

    @property
    def k(self) -> int:
        return self.all.k

    def to_json(self) -> dict:
        """The issue's schema: {"all": TERMS, "suites": {name: TERMS}, "n_items", "k"}."""
        return {"all": self.all.to_json(), "suites": {d.suite: d.to_json() for d in self.suites},
                "n_items": self.n_items, "k": self.k}


def is_boxed(record: EvalRecord) -> bool:
    return (record.correct_strict or record.format == "boxed"
            or bool((record.extracted or "").strip()))


def decoding_of(records: Sequence[EvalRecord]) -> str:
    return "sampled" if any(r.sample > 0 for r in records) else "greedy"


def _classified(records: Sequence[EvalRecord], classify, styles: list[str]
                ) -> list[tuple[str, int, bool, bool]]:
    """(item id, style index, boxed, boxed and correct) per response; new styles are added."""
    rows = []
    for record in records:
        style = classify(record.response, record.format, record.finish_reason)
        if style not in styles:
            styles.append(style)  # a classifier's extra style still gets its own row
        boxed = is_boxed(record)
        rows.append((record.id, styles.index(style), boxed, boxed and record.correct_strict))
    return rows


def _counts(rows: list[tuple[str, int, bool, bool]], ids: list[str], n_styles: int
            ) -> np.ndarray:
    """(items, styles, 3) counts of [responses, boxed, boxed and correct]."""
    index = {item: j for j, item in enumerate(ids)}
    out = np.zeros((len(ids), n_styles, 3))
    for item, style, boxed, correct in rows:
        if item in index:
            out[index[item], style] += (1, boxed, correct)
    return out


def _estimate(point: float, boot: np.ndarray, n: int) -> Estimate:
    if n < MIN_INTERVAL_ITEMS:
        return Estimate(float(point), None, None, "none", n)
    low, high = percentile_interval(boot)
    return Estimate(float(point), float(low), float(high), "items", n, boot=boot)


def _shares(base: np.ndarray, trained: np.ndarray, styles: list[str]) -> tuple[StyleShares, ...]:
    def clean(values):
        return tuple(None if np.isnan(v) else float(v) for v in values)

    f0, f1 = factors(base), factors(trained)
    return tuple(StyleShares(style, clean(x[i] for x in f0), clean(x[i] for x in f1))
                 for i, style in enumerate(styles))


@dataclass(frozen=True)
class _Suite:
    """A suite's matched counts (n, S, 3) per side and its resampled terms (B,) per TERM."""

    name: str
    base: np.ndarray
    trained: np.ndarray
    k: int
    point: dict[str, float]
    boot: dict[str, np.ndarray]


def _accuracy(totals: np.ndarray) -> np.ndarray:
    return totals[..., 2].sum(axis=-1) / totals[..., 0].sum(axis=-1)


def _extended(base: np.ndarray, trained: np.ndarray, degenerate: int | None) -> dict:
    """TERMS plus both accuracies and selection (the π part, degeneration fix included)."""
    out = shapley_terms(base, trained, degenerate)
    out["selection"] = out["degeneration_fix"] + out["mode_selection"]
    out["base_acc"], out["trained_acc"] = _accuracy(base), _accuracy(trained)
    return out


def _resample(name: str, base: np.ndarray, trained: np.ndarray, degenerate: int | None,
              k: int, rng: np.random.Generator, n_resamples: int) -> _Suite:
    weights = resample_weights(len(base), n_resamples, rng).astype(float)  # (B, n)
    b_tot = np.einsum("bn,nsc->bsc", weights, base)
    t_tot = np.einsum("bn,nsc->bsc", weights, trained)
    b_all, t_all = base.sum(axis=0), trained.sum(axis=0)
    point = {t: float(v) for t, v in _extended(b_all, t_all, degenerate).items()}
    boot = _extended(b_tot, t_tot, degenerate)
    return _Suite(name, base, trained, k, point, boot)


def _combine(name: str, parts: Sequence[_Suite], styles: list[str]) -> Decomposition:
    """Item-weighted mean of the suites' terms (a single suite is itself)."""
    n = sum(len(p.base) for p in parts)
    weights = [len(p.base) / n for p in parts]
    est = {key: _estimate(sum(w * p.point[key] for w, p in zip(weights, parts, strict=True)),
                          sum(w * p.boot[key] for w, p in zip(weights, parts, strict=True)), n)
           for key in (*TERMS, "selection", "base_acc", "trained_acc")}
    base = sum(p.base.sum(axis=0) for p in parts)
    trained = sum(p.trained.sum(axis=0) for p in parts)
    return Decomposition(name, n, min(p.k for p in parts), est["base_acc"], est["trained_acc"],
                         {t: est[t] for t in TERMS}, _shares(base, trained, styles),
                         est["selection"])


def decompose(base: EvalStep, trained: EvalStep, *, classifier: str = "organism",
              seed: int = 0, n_resamples: int = N_RESAMPLES, run: str = "run",
              base_name: str = "base") -> tuple[GainDecomposition | None, list[str]]:
    """Split each shared suite's gain; notes say what could not be compared and on how many
    items the rest was. None when no suite can be compared."""
    classify = get_classifier(classifier)
    styles = list(STYLES[classifier])
    notes: list[str] = []
    matched: list[tuple[str, list, list, list[str]]] = []
    decodings = set()
    for suite in sorted(set(base.records) | set(trained.records)):
        if suite not in trained.records:
            notes.append(f"{suite}: evaluated for {base_name} but not for {run}; not compared")
            continue
        if suite not in base.records:
            notes.append(f"{suite}: evaluated for {run} but not for {base_name}; not compared")
            continue
        b_rec, t_rec = base.records[suite], trained.records[suite]
        b_dec, t_dec = decoding_of(b_rec), decoding_of(t_rec)
        if b_dec != t_dec:
            notes.append(f"{suite}: {base_name} is {b_dec}, {run} is {t_dec}; a decomposition "
                         "needs one decoding on both sides; not compared")
            continue
        b_ids, t_ids = {r.id for r in b_rec}, {r.id for r in t_rec}
        common = sorted(b_ids & t_ids)
        if not common:
            notes.append(f"{suite}: {base_name} and {run} share no item ids; not compared")
            continue
        if len(common) != len(b_ids) or len(common) != len(t_ids):
            notes.append(f"{suite}: {base_name} has {len(b_ids)} items, {run} has "
                         f"{len(t_ids)}; compared on the {len(common)} they share")
        matched.append((suite, _classified(b_rec, classify, styles),
                        _classified(t_rec, classify, styles), common))
        decodings.add(b_dec)
    if not matched:
        return None, notes
    if len(decodings) > 1:
        notes.append(f"{run}: suites differ in decoding (greedy and sampled); `all` pools both")
    degenerate = styles.index(DEGENERATE) if DEGENERATE in styles else None
    rngs = np.random.default_rng(seed).spawn(len(matched))
    parts = []
    for (suite, b_rows, t_rows, common), rng in zip(matched, rngs, strict=True):
        b_arr, t_arr = (_counts(rows, common, len(styles)) for rows in (b_rows, t_rows))
        k = int(min(b_arr[..., 0].sum(axis=1).min(), t_arr[..., 0].sum(axis=1).min()))
        parts.append(_resample(suite, b_arr, t_arr, degenerate, k, rng, n_resamples))
    suites = tuple(_combine(p.name, [p], styles) for p in parts)
    return GainDecomposition(classifier, decodings.pop() if len(decodings) == 1 else "mixed",
                             suites, _combine("all", parts, styles)), notes
