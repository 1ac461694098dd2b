"""The claims checklist: the seed paper's claims C1-C9, each measured with its interval and a
verdict by a rule fixed before looking at results (docs/analysis.md, "Claims").

Rules. A directional claim is `reproduced` when its quantity has the predicted sign with a 95%
interval excluding 0, `contradicted` when the interval lies entirely on the other side of 0
(it excludes the prediction), else `inconclusive`. An "≈" claim is `reproduced` when the
interval lies within ±2 points, `contradicted` when it lies entirely outside that band, else
`inconclusive`. A claim whose runs are not among the inputs is `not run`. A quantity without an
interval (one seed of a quantity that has no items) is `inconclusive`.

Intervals: one run per condition, the paired item bootstrap; several seeds, a t-interval over
the per-seed values (conditions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rlvr.analysis.compute import Analysis, RunComparison
from rlvr.analysis.conditions import Member, contrast, paired_items, seed_or_items
from rlvr.core.ablations import condition
from rlvr.core.stats import Estimate, paired_gain
from rlvr.rundir.read import training_problems

__all__ = ["BAND", "Claim", "check_claims", "claims_json", "verdict"]

BAND = 2.0  # points: an "≈ 0" claim holds when the whole interval lies within ±BAND
_POSITIVE = "positive"
_NEGATIVE = "negative"
_ZERO = "zero"
_RULES = {
    _POSITIVE: "reproduced when > 0 with a 95% interval excluding 0; contradicted when the "
               "interval lies at or below 0; else inconclusive",
    _NEGATIVE: "reproduced when < 0 with a 95% interval excluding 0; contradicted when the "
               "interval lies at or above 0; else inconclusive",
    _ZERO: f"reproduced when the 95% interval lies within ±{BAND:g} points; contradicted when "
           f"it lies entirely outside ±{BAND:g}; else inconclusive",
}


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    measure: str
    rule: str
    estimate: Estimate | None
    seeds: int
    items: int
    verdict: str
    note: str = ""

    def to_json(self) -> dict:
        value = None if self.estimate is None else self.estimate.points()
        return {"id": self.id, "claim": self.claim, "measure": self.measure, "rule": self.rule,
                "value": None if value is None else value["value"],
                "ci": None if value is None else value["ci"], "seeds": self.seeds,
                "items": self.items, "verdict": self.verdict}


def verdict(estimate: Estimate | None, prediction: str) -> str:
    if estimate is None:
        return "not run"
    if not estimate.has_interval:
        return "inconclusive"
    low, high = 100 * estimate.low, 100 * estimate.high
    if prediction == _ZERO:
        if -BAND <= low and high <= BAND:
            return "reproduced"
        return "contradicted" if low > BAND or high < -BAND else "inconclusive"
    sign = 1 if prediction == _POSITIVE else -1
    low, high = sorted((sign * low, sign * high))
    if low > 0:
        return "reproduced"
    return "contradicted" if high <= 0 else "inconclusive"


def _both(first: str, second: str) -> str:
    """Two parts of one claim: reproduced only if both are; contradicted if either is."""
    if "not run" in (first, second):
        return "not run"
    if "contradicted" in (first, second):
        return "contradicted"
    return "reproduced" if first == second == "reproduced" else "inconclusive"


# --- the measured quantities -------------------------------------------------------------------

def _role(analysis: Analysis, name: str) -> list[RunComparison]:
    """The evaluated steps of the runs of registry condition `name` (rlvr.core.ablations)."""
    role = condition(name).role
    return [c for c in analysis.comparisons if c.role == role and c.step > 0]


def _members(analysis: Analysis, name: str) -> list[Member]:
    by_name = {r.name: r for r in analysis.runs}
    return [Member(c.run, c.seed, by_name[c.run].evals[c.step], c.total.trained_acc,
                   c.total.gain, c.total.n_items) for c in _role(analysis, name)]


def _per_run(runs: list[RunComparison], pick: Callable[[RunComparison], Estimate | None]
             ) -> tuple[Estimate | None, int, int]:
    found = [(c, pick(c)) for c in runs]
    found = [(c, e) for c, e in found if e is not None]
    if not found:
        return None, 0, 0
    return (seed_or_items([e for _, e in found]), len(found),
            min(e.n if e.method == "items" else c.total.n_items for c, e in found))


def _anchor_suites(run) -> set[str]:
    """The suite(s) the training rows came from, and `*-FAMILY` for an organism family."""
    out = set()
    for problem in training_problems(run):
        out.add(problem.suite)
        family = problem.meta.get("family")
        if family:
            out.add(f"organism-{family}")
    return out


def _transfer(analysis: Analysis, c: RunComparison) -> Estimate | None:
    """Gain on the held-out suites other than the anchor's (all suites when it is unknown)."""
    run = next(r for r in analysis.runs if r.name == c.run)
    own = _anchor_suites(run)
    suites = [s for s in run.evals[c.step].records if s not in own]
    base, trained = paired_items(analysis.base_step, run.evals[c.step], suites)
    return paired_gain(base, trained) if base else None


def _post_saturation(analysis: Analysis, c: RunComparison) -> Estimate | None:
    sat = next((s for s in analysis.saturations if s.run == c.run), None)
    run = next(r for r in analysis.runs if r.name == c.run)
    if sat is None or sat.step is None:
        return None
    before = [s for s in run.evals if s <= sat.step]
    if not before or max(run.evals) <= sat.step:
        return None
    early, late = paired_items(run.evals[max(before)], run.evals[max(run.evals)])
    return paired_gain(early, late) if early else None


def _fade(analysis: Analysis, c: RunComparison, part: str) -> Estimate | None:
    """Entropy-only: the early gain (first evaluation after step 0) or final − early."""
    run = next(r for r in analysis.runs if r.name == c.run)
    steps = sorted(s for s in run.evals if s > 0)
    if len(steps) < 2:
        return None
    early = run.evals[steps[0]]
    if part == "early":
        base, after = paired_items(analysis.base_step, early)
    else:
        base, after = paired_items(early, run.evals[steps[-1]])
    return paired_gain(base, after) if base else None


def _claim(cid: str, text: str, measure: str, prediction: str,
           found: tuple[Estimate | None, int, int], note: str = "") -> Claim:
    estimate, seeds, items = found
    return Claim(cid, text, measure, _RULES[prediction], estimate, seeds, items,
                 verdict(estimate, prediction), note)


def _contrast_claim(analysis: Analysis, cid: str, text: str, measure: str, left: str,
                    right: str, prediction: str) -> Claim:
    found = contrast(condition(left).role, _members(analysis, left), condition(right).role,
                     _members(analysis, right))
    result = (None, 0, 0) if found is None else (found.difference, found.pairs, found.n_items)
    return _claim(cid, text, measure, prediction, result)


def check_claims(analysis: Analysis) -> list[Claim]:
    """C1-C9 for the roles present; the rest `not run`."""
    outcome, entropy = _role(analysis, "outcome"), _role(analysis, "entropy-only")
    c1_skill = _per_run(outcome, lambda c: c.total.terms["skill_change"])
    c1_sel = _per_run(outcome, lambda c: c.total.selection)
    c1 = _claim("C1", "the gain is selection over modes the base has, not new knowledge",
                "skill change (and selection) of the outcome run(s), points", _ZERO, c1_skill)
    c1 = Claim(**{**c1.__dict__, "rule": c1.rule + "; and selection > 0 with its interval "
                  "excluding 0", "verdict": _both(c1.verdict, verdict(c1_sel[0], _POSITIVE))})
    c4_fmt = _per_run(_role(analysis, "format-only"), lambda c: c.total.gain)
    c4_more = contrast(condition("outcome").role, _members(analysis, "outcome"),
                       condition("format-only").role, _members(analysis, "format-only"))
    c4 = _claim("C4", "a format-only reward gives a large part of the gain, outcome more",
                "format-only gain over the base, points (and outcome − format-only)",
                _POSITIVE, c4_fmt)
    more = None if c4_more is None else c4_more.difference
    c4 = Claim(**{**c4.__dict__, "rule": c4.rule + "; and outcome − format-only > 0 likewise",
                  "verdict": _both(c4.verdict, verdict(more, _POSITIVE))})
    c5 = _claim("C5", "entropy-only training gives a transient gain that fades",
                "entropy-only: final − first evaluated step's accuracy, points (and the early "
                "gain over the base)", _NEGATIVE,
                _per_run(entropy, lambda c: _fade(analysis, c, "late")))
    early = _per_run(entropy, lambda c: _fade(analysis, c, "early"))[0]
    c5 = Claim(**{**c5.__dict__, "rule": c5.rule + "; and the early gain > 0 likewise",
                  "verdict": _both(c5.verdict, verdict(early, _POSITIVE))})
    return [
        c1,
        _claim("C2", "gains transfer across problem families/subjects",
               "outcome gain on the held-out suites other than the anchor's, points",
               _POSITIVE, _per_run(outcome, lambda c: _transfer(analysis, c))),
        _claim("C3", "held-out accuracy keeps rising after training accuracy saturates",
               "outcome: final − last-before-saturation held-out accuracy, points", _POSITIVE,
               _per_run(outcome, lambda c: _post_saturation(analysis, c))),
        c4,
        c5,
        _contrast_claim(analysis, "C6", "an unguessable wrong label ≈ entropy-only",
                        "unguessable wrong label − entropy-only accuracy, points",
                        "wrong-label-unguessable", "entropy-only", _ZERO),
        _claim("C7", "a guessable wrong label can hurt",
               "guessable wrong label gain over the base, points", _NEGATIVE,
               _per_run(_role(analysis, "wrong-label-guessable"), lambda c: c.total.gain)),
        _claim("C8", "less latent skill → smaller gain",
               "outcome gain of the default organism − of a weaker one, points", _POSITIVE,
               (None, 0, 0), "needs outcome runs from a weaker organism"),
        _claim("C9", "a good anchor is partially solved with high reward variance, not the "
               "hardest", "gain from the top-variance anchor − from the hardest, points",
               _POSITIVE, (None, 0, 0), "needs runs from several anchors"),
    ]


def claims_json(claims: list[Claim]) -> list[dict]:
    return [c.to_json() for c in claims]
