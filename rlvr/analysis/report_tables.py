"""The report's tables, each built from an `Analysis` (numbers in accuracy points, every
accuracy, gain and term with its 95% interval: "value [low, high]")."""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.analysis.claims import Claim
from rlvr.analysis.compute import Analysis, RunComparison
from rlvr.analysis.conditions import paired_items
from rlvr.core.stats import Estimate, item_accuracy, paired_gain
from rlvr.decomposition.shapley import TERMS

__all__ = ["Table", "ci", "pts", "tables", "who"]


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    group: bool = False  # the first column repeats: show it once per run of equal values
    emphasis: tuple[int, ...] = ()  # rows to show in bold (totals)


def pts(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def ci(est: Estimate | None, signed: bool = False) -> str:
    """"12.3 [8.1, 16.0]"; a gain whose interval holds 0 is marked "≈0" (within noise)."""
    if est is None:
        return "—"
    if not est.has_interval:
        return f"{pts(est.value, signed)} (no interval)"
    mark = " ≈0" if signed and est.within_noise else ""
    return f"{pts(est.value, signed)} [{pts(est.low, signed)}, {pts(est.high, signed)}]{mark}"


def who(run: str, role: str) -> str:
    return run if run == role else f"{run} ({role})"


def _decoding(c: RunComparison) -> str:
    d = c.decomposition
    return {"sampled": f"avg@{d.k}", "greedy": "greedy"}.get(d.decoding,
                                                              "greedy and sampled suites")


def _accuracy_table(analysis: Analysis) -> Table:
    rows = []
    for c in analysis.comparisons:
        t = c.total
        greedy = "—" if c.greedy is None else f"{ci(c.greedy[0])} → {ci(c.greedy[1])}"
        rows.append((who(c.run, c.role), "—" if c.seed is None else str(c.seed), _decoding(c),
                     str(t.n_items), ci(t.base_acc), ci(t.trained_acc), ci(t.gain, True),
                     f"{c.peak_step}: {ci(c.peak)}", str(c.step), greedy))
    return Table("Accuracy: base → trained (last step), peak step, greedy beside",
                 ("run", "seed", "decoding", "items", "base %", "trained %", "gain",
                  "peak step: %", "last step", "greedy base → trained % (greedy)"), tuple(rows),
                 "Strict accuracy in points with 95% intervals (paired bootstrap over items, "
                 "1,000 resamples). avg@k = mean over k samples per item at the evaluation "
                 "temperature, the headline; greedy is a threshold on the mode prior and is "
                 "shown only beside it. ≈0: within noise (the interval contains 0).")


def _decomposition_row(run: str, row) -> tuple[str, ...]:
    return (run, row.suite, str(row.n_items), ci(row.base_acc), ci(row.trained_acc),
            *(ci(row.terms[t], True) for t in TERMS))


def decomposition_table(analysis: Analysis) -> Table:
    rows, bold = [], []
    for c in analysis.comparisons:
        for row in c.decomposition.suites:
            rows.append(_decomposition_row(who(c.run, c.role), row))
        if len(c.decomposition.suites) > 1:
            bold.append(len(rows))
            rows.append(_decomposition_row(who(c.run, c.role), c.total))
    return Table(
        "Decomposition per suite",
        ("run", "suite", "items", "base %", "trained %", "gain", "format correction",
         "degeneration fix", "mode selection", "skill change"),
        tuple(rows),
        f"Points, 95% intervals. Styles by the `{analysis.classifier}` classifier; accuracy "
        "= Σ π(style)·φ(style)·a(style) and gain = format correction (φ) + degeneration fix + "
        "mode selection (π) + skill change (a), split exactly by the Shapley rule "
        "(docs/analysis.md). Base: " + (analysis.base_label or "none") + ".",
        group=True, emphasis=tuple(bold))


def _styles_table(analysis: Analysis) -> Table:
    rows = []

    def side(values):
        return " / ".join("—" if v is None else f"{v:.2f}" for v in values)

    for c in analysis.comparisons:
        for s in c.total.styles:
            if (s.base[0] or 0) == 0 and (s.trained[0] or 0) == 0:
                continue
            rows.append((who(c.run, c.role), s.style, side(s.base), side(s.trained)))
    return Table("Style shares: π (share) / φ (boxed share) / a (accuracy when boxed)",
                 ("run", "style", "base π / φ / a", "trained π / φ / a"), tuple(rows),
                 "All suites pooled; fractions; — where undefined (no response, or none boxed).",
                 group=True)


def _conditions_table(analysis: Analysis) -> Table:
    rows = []
    for c in analysis.conditions:
        per_seed = ", ".join(pts(v) for v in c.accuracy.per_seed) or "—"
        how = f"t over {c.accuracy.n} seeds" if c.accuracy.method == "seeds" else (
            f"items ({c.n_items})" if c.accuracy.method == "items" else "none")
        rows.append((c.role, str(len(c.runs)), ci(c.accuracy), ci(c.gain, True), per_seed, how))
    return Table("Conditions (mean over seeds)", ("condition", "runs", "trained %", "gain",
                                                  "per-seed trained %", "interval"),
                 tuple(rows), "One run: its item-bootstrap interval; several seeds: mean and "
                 "t-interval over the per-seed values.")


def _contrasts_table(analysis: Analysis) -> Table:
    rows = [(f"{c.left} − {c.right}", ci(c.difference, True), str(c.n_items), str(c.pairs))
            for c in analysis.contrasts]
    return Table("Any two conditions compared", ("contrast", "difference (points)", "items",
                                                 "seed pairs"), tuple(rows),
                 "Trained accuracy of the first minus the second, on the items both evaluated; "
                 "runs paired by seed (one pair: paired item bootstrap; several: t over pairs).")


def claims_table(claims: list[Claim]) -> Table:
    rows = [(c.id, c.claim, c.measure, ci(c.estimate, True) if c.estimate else "—",
             str(c.seeds), str(c.items), c.verdict + (f" ({c.note})" if c.note else ""), c.rule)
            for c in claims]
    return Table("Claims checklist (C1-C9)", ("id", "claim", "measured", "value (points)",
                                              "seeds", "items", "verdict", "rule"), tuple(rows),
                 "Verdict rules fixed before looking at results (docs/analysis.md); also "
                 "written as claims.json beside this page.")


def _heldout(analysis: Analysis, run: str, suite: str, before: int, after: int | None
             ) -> tuple[str, str, str]:
    """Held-out accuracy at the last evaluation at/before saturation and at the final one (item
    bootstrap), and the change between them (paired)."""
    found = next((r for r in analysis.runs if r.name == run), None)
    if found is None:
        return "—", "—", "—"
    left, right = paired_items(found.evals[before], found.evals[after if after is not None
                                                                else before], [suite])
    if not left:
        return "—", "—", "—"
    first = f"{ci(item_accuracy(left))} (step {before})"
    if after is None:
        return first, "—", "—"
    return (first, f"{ci(item_accuracy(right))} (step {after})",
            ci(paired_gain(left, right), True))


def _saturation_table(analysis: Analysis) -> Table:
    rows = []
    for sat in analysis.saturations:
        step = "not reached" if sat.step is None else str(sat.step)
        if not sat.heldout:
            rows.append((sat.run, sat.anchor or "—", step, "—", "—", "—", "—"))
        for h in sat.heldout:
            rows.append((sat.run, sat.anchor, step, h.suite,
                         *_heldout(analysis, sat.run, h.suite, h.before_step, h.after_step)))
    return Table("Post-saturation generalization",
                 ("run", "anchor", "saturation step", "suite", "held-out before",
                  "held-out after", "change"), tuple(rows),
                 f"Saturation: the first step from which the anchor's train accuracy stays ≥ "
                 f"{analysis.threshold:g} for {analysis.window} logged steps. Accuracies with "
                 "item-bootstrap 95% intervals; the change with a paired one (claim C3).",
                 group=True)


def _labels_table(analysis: Analysis) -> Table:
    suites = sorted({s for row in analysis.labels for s in row.accuracy})
    rows = []
    for row in analysis.labels:
        cells = []
        for suite in suites:
            acc, gain = row.accuracy.get(suite), row.gain.get(suite)
            cells.append("—" if acc is None else ci(acc) + (
                f"; gain {ci(gain, True)}" if gain is not None else ""))
        sat = ", ".join("—" if s is None else str(s) for s in row.saturation)
        rows.append((row.condition, ", ".join(row.runs), ", ".join(x for x in row.labels if x)
                     or "—", *cells, pts(row.train_acc), pts(row.reward_mean), sat,
                     "; ".join(row.first_label) or "—"))
    return Table("Label study", ("condition", "runs", "label", *[f"{s} %; gain" for s in suites],
                                 "final train acc % (true gold)", "final reward mean %",
                                 "saturation step", "label first produced (by style)"),
                 tuple(rows), "Accuracy on held-out suites after training and its gain over "
                 "the base, 95% intervals (several seeds: t over seeds).")


def runs_table(analysis: Analysis) -> Table:
    sats = {s.run: s for s in analysis.saturations}
    rows = []
    if analysis.base is not None and analysis.base not in analysis.runs:
        rows.append((analysis.base.name, "base", "—", "—", "—", "0",
                     ", ".join(map(str, sorted(analysis.base.evals))) or "none", "—", "—"))
    for run in analysis.runs:
        last = run.metrics[-1].train_acc_mean if run.metrics else None
        sat = sats.get(run.name)
        rows.append((
            run.name, run.role, "—" if run.seed is None else str(run.seed),
            run.reward_mode or "—", run.label or "—", str(len(run.metrics)),
            ", ".join(map(str, sorted(run.evals))) or "none", pts(last),
            "—" if sat is None or sat.step is None else str(sat.step),
        ))
    return Table("Runs", ("run", "role", "seed", "reward.mode", "label", "steps logged",
                          "evaluated steps", "final train acc %", "saturation step"),
                 tuple(rows))


def tables(analysis: Analysis, claims: list[Claim]) -> dict[str, Table]:
    return {
        "runs": runs_table(analysis),
        "accuracy": _accuracy_table(analysis),
        "decomposition": decomposition_table(analysis),
        "styles": _styles_table(analysis),
        "conditions": _conditions_table(analysis),
        "contrasts": _contrasts_table(analysis),
        "claims": claims_table(claims),
        "saturation": _saturation_table(analysis),
        "labels": _labels_table(analysis),
        "groups": _groups_table(analysis),
        "coverage": _coverage_table(analysis),
    }


def _coverage_table(analysis: Analysis) -> Table:
    """pass@k of base and run with intervals (rlvr.decomposition.coverage), per k."""
    rows = []
    for c in analysis.comparisons:
        cover = c.coverage
        if cover is None:
            continue
        crossing = "stays above" if cover.crossing_k is None else f"k = {cover.crossing_k}"
        only = f"{len(cover.only_trained)} / {len(cover.only_base)}"
        for k, b, t, d in zip(cover.ks, cover.base, cover.trained, cover.difference, strict=True):
            rows.append((who(c.run, c.role), str(k), ci(b), ci(t), ci(d, True), crossing, only))
    return Table("Coverage (classifier-free): pass@k, base → trained",
                 ("run", "k", "base pass@k %", "trained pass@k %", "difference", "curves cross",
                  "items solved only by trained / only by base"), tuple(rows),
                 "Unbiased pass@k over the items both evaluated, 95% paired item bootstrap. "
                 "Selection without new skill lifts pass@1 while pass@k at large k stays equal "
                 "or drops (the curves cross) and few items are solved by the trained model "
                 "alone.", group=True)


def _groups_table(analysis: Analysis) -> Table:
    """Per-group accuracy (rlvr.evaluation.groups: family, subject, level, --group-by) of each run's last
    evaluation, from its summary."""
    from rlvr.evaluation.groups import group_rows

    runs = [analysis.base] if analysis.base is not None else []
    runs += [r for r in analysis.runs if r is not analysis.base]
    rows = []
    for run in runs:
        steps = [step for step, e in run.evals.items() if e.summary]
        if steps:
            rows += group_rows(f"{run.name} (step {max(steps)})",
                               run.evals[max(steps)].summary)
    return Table("Accuracy by group (last evaluation of each run)",
                 ("run", "suite", "column", "value", "n", "strict", "95% interval", "lenient"),
                 tuple(rows), "Strict accuracy of the evaluation's headline pass with its 95% "
                 "interval over the group's items; groups come from the suite's family, "
                 "subject and level columns (and rlvr eval --group-by).", group=True)
