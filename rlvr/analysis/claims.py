"""The claims checklist: the seed paper's claims C1-C9, each measured with its interval and a
verdict by a rule fixed before looking at results (docs/analysis.md, "Claims").

Rules. A directional claim is `reproduced` when its quantity has the predicted sign with a 95%
interval excluding 0, `contradicted` when the interval lies entirely on the other side of 0
(it excludes the prediction), else `inconclusive`. An "≈" claim is `reproduced` when the
interval lies within ±2 points, `contradicted` when it lies entirely outside that band, else
`inconclusive`. A claim whose runs are not among the inputs is `not run`. A quantity without an
interval (one seed of a quantity that has no items) is `inconclusive`.

Intervals: one run per condition, the paired item bootstrap; several seeds, the two-level
(seeds × items) bootstrap of `rlvr.core.stats.two_level` (conditions.py). A verdict on fewer
than MIN_SEEDS seeds or MIN_ITEMS items is `too small to judge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rlvr.analysis.compute import Analysis, RunComparison
from rlvr.analysis.conditions import Member, contrast, paired_items, seed_or_items
from rlvr.core.ablations import condition
from rlvr.core.stats import Estimate, paired_gain
from rlvr.rundir.read import training_problems

__all__ = ["BAND", "MIN_ITEMS", "MIN_SEEDS", "RULES", "TOO_SMALL", "Claim", "check_claims", "claims_json",
           "size_rule", "verdict"]

BAND = 2.0  # points: an "≈ 0" claim holds when the whole interval lies within ±BAND
# The size a decided verdict needs (docs/analysis.md, "Size before verdicts"): below it a
# claim reads TOO_SMALL whatever its interval says (a plumbing run, not a result).
MIN_SEEDS = 3
MIN_ITEMS = 64
TOO_SMALL = "too small to judge"
_POSITIVE = "positive"
_NEGATIVE = "negative"
_ZERO = "zero"
RULES = {
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
    extra: dict = field(default_factory=dict)  # claim-specific parts, written into the JSON

    def to_json(self) -> dict:
        value = None if self.estimate is None else self.estimate.points()
        return {"id": self.id, "claim": self.claim, "measure": self.measure, "rule": self.rule,
                "value": None if value is None else value["value"],
                "ci": None if value is None else value["ci"], "seeds": self.seeds,
                "items": self.items, "verdict": self.verdict, "note": self.note,
                "anchor": None, "anchor_kind": None, "robust": None, "sensitivity": [],
                **self.extra}


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


def _claim(cid: str, text: str, measure: str, prediction: str,
           found: tuple[Estimate | None, int, int], note: str = "") -> Claim:
    estimate, seeds, items = found
    return Claim(cid, text, measure, RULES[prediction], estimate, seeds, items,
                 verdict(estimate, prediction), note)


def _contrast_claim(analysis: Analysis, cid: str, text: str, measure: str, left: str,
                    right: str, prediction: str) -> Claim:
    found = contrast(condition(left).role, _members(analysis, left), condition(right).role,
                     _members(analysis, right))
    result = (None, 0, 0) if found is None else (found.difference, found.pairs, found.n_items)
    return _claim(cid, text, measure, prediction, result)


def _points(estimate: Estimate | None) -> dict | None:
    return None if estimate is None else estimate.points()


def _c1(analysis: Analysis, outcome: list[RunComparison]) -> Claim:
    """Mode selection > 0 and skill change not positive beyond the ≈ band; the previous rule
    (skill ≈ 0 and selection > 0) beside it; a skill loss as damage (docs/analysis.md)."""
    mode = _per_run(outcome, lambda c: c.total.terms["mode_selection"])
    skill = _per_run(outcome, lambda c: c.total.terms["skill_change"])[0]
    selection = _per_run(outcome, lambda c: c.total.selection)[0]
    skill_part = "not run" if skill is None else (
        "inconclusive" if not skill.has_interval else
        "contradicted" if 100 * skill.low > BAND else "reproduced")
    extra = {"skill_change": _points(skill),
             "previous_verdict": _both(verdict(skill, _ZERO), verdict(selection, _POSITIVE)),
             "previous_rule": "skill change ≈ 0 (±2) and selection (degeneration fix + mode "
                              "selection) > 0"}
    if skill is not None and skill.has_interval and skill.high < 0:
        extra["skill_damage"] = _points(skill)
    c1 = _claim("C1", "the gain is selection over modes the base has, not new knowledge",
                "mode selection of the outcome run(s), points (skill change beside it)",
                _POSITIVE, mode)
    return Claim(**{**c1.__dict__, "rule": c1.rule + f"; and skill change not above +{BAND:g} "
                    "(its interval's low end ≤ +2): a skill loss is damage, shown apart, "
                    "not new knowledge", "verdict": _both(c1.verdict, skill_part),
                    "extra": extra})


def _c5(analysis: Analysis, entropy: list[RunComparison]) -> Claim:
    """The largest early gain (every evaluated step before the last) with a Bonferroni
    interval, and its fade to the last step (docs/analysis.md)."""
    from rlvr.core.stats import CONFIDENCE, bonferroni, two_level

    runs = [next(r for r in analysis.runs if r.name == c.run) for c in entropy]
    base = analysis.base_step
    early_steps = sorted({s for r in runs for s in r.evals if 0 < s < max(r.evals)})
    early_steps = [s for s in early_steps if all(s in r.evals for r in runs)]
    text = "entropy-only training gives a transient gain that fades"
    measure = ("entropy-only: the largest early gain over the base (evaluated steps before the "
               "last, Bonferroni-adjusted interval), and last − that step, points")
    if not runs or base is None or not early_steps:
        return _claim("C5", text, measure, _POSITIVE, (None, 0, 0))
    level = bonferroni(CONFIDENCE, len(early_steps))
    gains = {}
    for s in early_steps:
        pairs = [paired_items(base, r.evals[s]) for r in runs]
        gains[s] = two_level([paired_gain(b, t) for b, t in pairs], confidence=level)
    peak = max(early_steps, key=lambda s: gains[s].value)
    fades = [paired_items(r.evals[peak], r.evals[max(r.evals)]) for r in runs]
    fade = two_level([paired_gain(b, t) for b, t in fades])
    items = len(fades[0][0])
    early_verdict = verdict(gains[peak], _POSITIVE)
    claim = _claim("C5", text, measure, _POSITIVE, (gains[peak], len(runs), items))
    note = ("no early gain at any evaluated step" if early_verdict == "contradicted" else "")
    return Claim(**{**claim.__dict__,
                    "rule": f"reproduced when the largest early gain's {100 * level:.2f}% "
                            f"(Bonferroni, {len(early_steps)} steps) interval lies above 0 and "
                            "last − that step < 0 with a 95% interval excluding 0; "
                            "contradicted when that early interval lies at or below 0 (no "
                            "early gain at any evaluated step) or the fade's at or above 0",
                    "verdict": _both(early_verdict, verdict(fade, _NEGATIVE)), "note": note,
                    "extra": {"peak_step": peak, "fade": _points(fade),
                              "early_gains": {str(s): _points(g) for s, g in gains.items()},
                              "bonferroni_confidence": level}})


def _label_hits(analysis: Analysis, name: str) -> dict | None:
    """How often the runs of condition `name` produced their training label, by style."""
    role = condition(name).role
    hits: dict[str, int] = {}
    rollouts = 0
    for run in (r for r in analysis.runs if r.role == role):
        for m in run.metrics:
            for style, n in (m.raw.get("label_hits") or {}).items():
                hits[style] = hits.get(style, 0) + int(n)
            rollouts += sum((m.raw.get("rollout_styles") or {}).values())
    return {"rollouts": rollouts, "hits_by_style": hits} if rollouts else None


def check_claims(analysis: Analysis) -> list[Claim]:
    """C1-C9 for the roles present; the rest `not run`; below the size rule, too small."""
    outcome, entropy = _role(analysis, "outcome"), _role(analysis, "entropy-only")
    c4_fmt = _per_run(_role(analysis, "format-only"), lambda c: c.total.gain)
    c4_more = contrast(condition("outcome").role, _members(analysis, "outcome"),
                       condition("format-only").role, _members(analysis, "format-only"))
    c4 = _claim("C4", "a format-only reward gives a large part of the gain, outcome more",
                "format-only gain over the base, points (and outcome − format-only)",
                _POSITIVE, c4_fmt)
    more = None if c4_more is None else c4_more.difference
    c4 = Claim(**{**c4.__dict__, "rule": c4.rule + "; and outcome − format-only > 0 likewise",
                  "verdict": _both(c4.verdict, verdict(more, _POSITIVE)),
                  "extra": {"outcome_minus_format": _points(more)}})
    c6 = _contrast_claim(analysis, "C6", "an unguessable wrong label ≈ entropy-only",
                         "unguessable wrong label − entropy-only accuracy, points (each "
                         "condition with its own settings, as the paper ran them)",
                         "wrong-label-unguessable", "entropy-only", _ZERO)
    matched = contrast(condition("wrong-label-unguessable-matched").role,
                       _members(analysis, "wrong-label-unguessable-matched"),
                       condition("entropy-only").role, _members(analysis, "entropy-only"))
    c6 = Claim(**{**c6.__dict__, "extra": {
        "matched_settings": None if matched is None else _points(matched.difference),
        "matched_settings_note": "the unguessable label with entropy-only's KL and weight "
                                 "decay, minus entropy-only (not part of the verdict)",
        "label_hits": _label_hits(analysis, "wrong-label-unguessable")}})
    c7 = _claim("C7", "a guessable wrong label can hurt",
                "guessable wrong label gain over the base, points", _NEGATIVE,
                _per_run(_role(analysis, "wrong-label-guessable"), lambda c: c.total.gain))
    c7 = Claim(**{**c7.__dict__,
                  "extra": {"label_hits": _label_hits(analysis, "wrong-label-guessable")}})
    claims = [
        _c1(analysis, outcome),
        _claim("C2", "gains transfer across problem families/subjects",
               "outcome gain on the held-out suites other than the anchor's, points",
               _POSITIVE, _per_run(outcome, lambda c: _transfer(analysis, c))),
        _claim("C3", "held-out accuracy keeps rising after training accuracy saturates",
               "outcome: final − last-before-saturation held-out accuracy, points", _POSITIVE,
               _per_run(outcome, lambda c: _post_saturation(analysis, c))),
        c4,
        _c5(analysis, entropy),
        c6,
        c7,
        _claim("C8", "less latent skill → smaller gain",
               "outcome gain of the default organism − of a weaker one, points", _POSITIVE,
               (None, 0, 0), "needs outcome runs from a weaker organism"),
        _claim("C9", "a good anchor is partially solved with high reward variance, not the "
               "hardest", "gain from the top-variance anchor − from the hardest, points",
               _POSITIVE, (None, 0, 0), "needs runs from several anchors"),
    ]
    return [size_rule(c) for c in claims]


def size_rule(claim: Claim) -> Claim:
    """A decided verdict on fewer than MIN_SEEDS seeds or MIN_ITEMS items is too small."""
    if claim.verdict in ("not run", "not testable on this anchor"):
        return claim
    if claim.seeds < MIN_SEEDS or claim.items < MIN_ITEMS:
        return Claim(**{**claim.__dict__, "verdict": TOO_SMALL,
                        "note": (claim.note + "; " if claim.note else "") + f"{claim.seeds} "
                                f"seeds × {claim.items} items is below the {MIN_SEEDS} × "
                                f"{MIN_ITEMS} a verdict needs (verdict by the rule alone: "
                                f"{claim.verdict})"})
    return claim


def claims_json(claims: list[Claim]) -> list[dict]:
    return [c.to_json() for c in claims]
