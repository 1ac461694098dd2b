"""What the report says in words, generated from the numbers: the opening sentences, the setup
(anchor, model, seeds, sampling), example responses per style, and style shares over steps."""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.analysis.claims import Claim
from rlvr.analysis.compute import Analysis
from rlvr.core.ablations import CONDITIONS
from rlvr.core.stats import Estimate
from rlvr.decomposition.styles import get_classifier, style_shares
from rlvr.rundir.read import Run, training_problems

__all__ = ["Example", "examples", "opening", "setup", "style_series"]

_CONTROLS = tuple(c.role for c in CONDITIONS if c.control)  # rlvr.core.ablations
_EXAMPLE_CHARS = 160


def _ci(est: Estimate) -> str:
    if not est.has_interval:
        return f"{100 * est.value:+.1f} (one value, no interval)"
    return f"{100 * est.value:+.1f} [{100 * est.low:+.1f}, {100 * est.high:+.1f}]"


def opening(analysis: Analysis, claims: list[Claim]) -> list[str]:
    """A few sentences: which gains are within noise, controls against outcome, what the
    reward adds beyond them, the skill-change term, and the claims' verdicts."""
    if not analysis.conditions and analysis.comparisons:
        # Evaluation folders (imported or `rlvr eval`) against a named base: no conditions.
        return ["Gains over the base " + (analysis.base_label or "") + " (points, 95% "
                "interval): " + "; ".join(f"{c.run} {_ci(c.total.gain)}"
                                          for c in analysis.comparisons) + "."]
    if not analysis.conditions:
        return ["No run could be compared with a base evaluation, so no gain is measured "
                "(see the notes)."]
    out = []
    moved = [f"{c.role} {_ci(c.gain)}" for c in analysis.conditions if not c.gain.within_noise]
    noise = [f"{c.role} {_ci(c.gain)}" for c in analysis.conditions if c.gain.within_noise]
    if moved:
        out.append("Gains over the base (points, 95% interval): " + "; ".join(moved) + ".")
    if noise:
        out.append("Within noise (the interval contains 0): " + "; ".join(noise) + ".")
    by_pair = {(c.left, c.right): c for c in analysis.contrasts}
    for control in _CONTROLS:
        found = by_pair.get(("outcome", control))
        if found is None:
            continue
        d = found.difference
        if d.within_noise:
            verb = f"matches outcome (outcome − {control} {_ci(d)}, within noise)"
        elif d.value > 0:
            verb = f"stays below outcome: the outcome reward adds {_ci(d)} points beyond it"
        else:
            verb = f"beats outcome by {_ci(d.scaled(-1))} points"
        out.append(f"The {control} control {verb}.")
    for c in analysis.comparisons:
        if c.role != "outcome":
            continue
        skill = c.total.terms["skill_change"]
        reading = ("within noise, as selection predicts" if skill.within_noise
                   else "worse computing inside its styles" if skill.value < 0
                   else "better computing inside its styles")
        out.append(f"{c.run}: skill change {_ci(skill)} points ({reading}); selection "
                   f"{_ci(c.total.selection)}, format correction "
                   f"{_ci(c.total.terms['format_correction'])}.")
    ran = [f"{c.id} {c.verdict}" for c in claims if c.verdict != "not run"]
    if ran:
        out.append("Claims: " + ", ".join(ran) + ".")
    return out


def setup(analysis: Analysis) -> list[tuple[str, str]]:
    """(label, text) rows: anchor (text, label, gold), model, seeds, sampling settings."""
    rows = []
    trained = [r for r in analysis.runs if r.is_training]
    anchors = sorted({e for r in trained for e in r.examples})
    for anchor in anchors[:3]:
        rows.append(("anchor", _anchor(anchor, trained)))
    models = sorted({r.model if r.model else "the shipped organism"
                     for r in (*trained, *([analysis.base] if analysis.base else []))
                     if r.model is not None})
    rows.append(("model", ", ".join(models) or "unknown"))
    seeds = sorted({r.seed for r in trained if r.seed is not None})
    rows.append(("seeds", ", ".join(map(str, seeds)) or "unknown"))
    if trained:
        cfg = trained[0].config
        rollout, ev = cfg.get("rollout", {}), cfg.get("eval", {})
        rows.append(("training rollouts", f"n = {rollout.get('n', '?')} per group at "
                     f"temperature {rollout.get('temperature', '?')}, top_p "
                     f"{rollout.get('top_p', '?')}, at most {rollout.get('max_new_tokens', '?')}"
                     " new tokens"))
        rows.append(("evaluation", _evaluation(ev, rollout)))
    rows.append(("style classifier", analysis.classifier))
    return rows


def _evaluation(ev: dict, rollout: dict) -> str:
    k, items = ev.get("samples", 0), ev.get("n_per_suite") or "all"
    if not k:
        return f"greedy only (no samples, so greedy is the headline); {items} items per suite"
    temperature = ev.get("temperature") or rollout.get("temperature", "?")
    greedy = ", greedy beside it" if ev.get("greedy", True) else ""
    return (f"{k} samples per item at temperature {temperature} (avg@{k}, the headline)"
            f"{greedy}; {items} items per suite")


def _anchor(anchor: str, runs: list[Run]) -> str:
    """Text and gold from the runs' recorded training rows; the labels the runs trained on."""
    found = next((p for r in runs if anchor in r.examples for p in training_problems(r)
                  if p.id == anchor), None)
    gold = "?" if found is None else str(found.answer)
    wrong = sorted({r.label for r in runs if anchor in r.examples and r.label})
    label = f"gold {gold}; outcome runs train on the gold" + (
        f"; wrong labels {', '.join(wrong)}" if wrong else "")
    return f"{anchor}: {found.problem!r} ({label})" if found else f"{anchor} ({label})"


@dataclass(frozen=True)
class Example:
    style: str
    before: str
    after: str


def examples(analysis: Analysis) -> tuple[str, list[Example]]:
    """One response per style before (base) and after (the first outcome run, else the first
    compared run), from the first suite both evaluated."""
    if not analysis.comparisons or analysis.base_step is None:
        return "", []
    c = next((c for c in analysis.comparisons if c.role == "outcome"), analysis.comparisons[0])
    run = next(r for r in analysis.runs if r.name == c.run)
    classify = get_classifier(analysis.classifier)
    picks: dict[str, list[str]] = {}
    for side, step in ((0, analysis.base_step), (1, run.evals[c.step])):
        for recs in step.records.values():
            for r in recs:
                style = classify(r.response, r.format, r.finish_reason)
                slot = picks.setdefault(style, ["", ""])
                if not slot[side] and r.response:
                    mark = "✓" if r.correct_strict else "✗"
                    slot[side] = f"{mark} {r.response[:_EXAMPLE_CHARS]}"
    return c.run, [Example(s, b or "—", a or "—") for s, (b, a) in picks.items()]


def style_series(run: Run, classifier: str) -> tuple[str, list[int], dict[str, list[float]]]:
    """Style shares over steps: the trainer's per-step `rollout_styles` counts when logged,
    else each evaluated step's responses."""
    logged = [m for m in run.metrics if isinstance(m.raw.get("rollout_styles"), dict)]
    if logged:
        steps = [m.step for m in logged]
        rows = [{str(k): float(v) for k, v in m.raw["rollout_styles"].items()} for m in logged]
        rows = [{k: v / (sum(r.values()) or 1) for k, v in r.items()} for r in rows]
        source = "rollouts"
    else:
        steps = sorted(run.evals)
        rows = [style_shares([x for recs in run.evals[s].records.values() for x in recs],
                             classifier) for s in steps]
        source = "evaluations"
    styles = list(dict.fromkeys(k for r in rows for k in r))
    return (f"{run.name} ({source})", steps,
            {s: [r.get(s, 0.0) for r in rows] for s in styles})
