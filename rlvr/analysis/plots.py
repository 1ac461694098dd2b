"""The report's figures as PNG bytes (matplotlib's Agg canvas; no pyplot global state).

Every function returns None when it has nothing to draw, so the report can say so instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from rlvr.analysis.compute import RunComparison
from rlvr.analysis.conditions import ConditionResult
from rlvr.analysis.saturation import Saturation
from rlvr.core.stats import Estimate
from rlvr.decomposition.shapley import TERMS
from rlvr.rundir.read import Run

__all__ = [
    "ROLE_COLORS",
    "decomposition_bars",
    "mode_share_plot",
    "pass_at_k_plot",
    "test_accuracy_curves",
    "training_curves",
    "waterfall_plot",
    "zero_variance_plot",
]

ROLE_COLORS = {
    "base": "#7f7f7f", "entropy-only": "#9467bd", "random": "#8c564b",
    "format-only": "#ff7f0e", "outcome": "#2ca02c", "guessable wrong label": "#1f77b4",
    "unguessable wrong label": "#d62728", "wrong label": "#17becf", "eval": "#bcbd22",
}
TERM_COLORS = {"gain": "#333333", "format_correction": "#ff7f0e", "degeneration_fix": "#9467bd",
               "mode_selection": "#2ca02c", "skill_change": "#1f77b4"}
STYLE_COLORS = ("#2ca02c", "#1f77b4", "#ff7f0e", "#8c564b", "#9467bd", "#17becf", "#bcbd22")
_DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _grid(n: int, columns: int = 3) -> tuple[int, int]:
    cols = min(n, columns)
    return (n + cols - 1) // cols, cols


def _linestyles(runs: Sequence[Run]) -> dict[str, tuple[str, str]]:
    """(color, linestyle) per run: the role's colour, a new dash for each repeat of a role."""
    dashes = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    out = {}
    for run in runs:
        k = seen.get(run.role, 0)
        seen[run.role] = k + 1
        out[run.name] = (ROLE_COLORS.get(run.role, "#333333"), dashes[k % len(dashes)])
    return out


def training_curves(runs: Sequence[Run], saturations: Sequence[Saturation]) -> bytes | None:
    """Anchor train accuracy (true gold) and policy entropy per step; saturation marked."""
    trained = [r for r in runs if r.metrics]
    if not trained:
        return None
    styles = _linestyles(trained)
    by_run = {s.run: s for s in saturations}
    fig = _figure(11, 4.4)
    acc_ax, ent_ax = fig.subplots(1, 2)
    for run in trained:
        color, dash = styles[run.name]
        sat = by_run.get(run.name)
        curve = sat.curve if sat and sat.curve else tuple(
            (m.step, m.train_acc_mean) for m in run.metrics if m.train_acc_mean is not None)
        if curve:
            steps, accs = zip(*curve, strict=True)
            acc_ax.plot(steps, accs, color=color, linestyle=dash, label=run.name)
        if sat and sat.step is not None:
            acc_ax.axvline(sat.step, color=color, linestyle=":", alpha=0.8)
            acc_ax.annotate(f"sat. {sat.step}", (sat.step, 0.02), color=color, fontsize=8,
                            rotation=90, va="bottom", ha="right")
        entropy = [(m.step, m.entropy) for m in run.metrics if m.entropy is not None]
        if entropy:
            steps, values = zip(*entropy, strict=True)
            ent_ax.plot(steps, values, color=color, linestyle=dash, label=run.name)
    if saturations:
        acc_ax.axhline(saturations[0].threshold, color="#999999", linewidth=0.8)
    acc_ax.set(title="Train accuracy on the anchor (true gold)", xlabel="step",
               ylabel="accuracy", ylim=(-0.03, 1.03))
    acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ent_ax.set(title="Policy entropy on the rollouts", xlabel="step", ylabel="nats / token")
    handles, labels = acc_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4),
                   fontsize=8)
    for ax in (acc_ax, ent_ax):
        ax.grid(alpha=0.3)
    return _png(fig)


def test_accuracy_curves(runs: Sequence[Run], saturations: Sequence[Saturation]
                         ) -> bytes | None:
    """Held-out strict accuracy at every evaluated step, one panel per suite."""
    suites = sorted({s for r in runs for step in r.evals.values() for s in step.suites})
    curved = [r for r in runs if len(r.evals) > 1]
    if not suites or not curved:
        return None
    styles = _linestyles(curved)
    sat_steps = {s.run: s.step for s in saturations if s.step is not None}
    rows, cols = _grid(len(suites))
    fig = _figure(3.8 * cols, 3.0 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, suite in zip(axes, suites, strict=False):
        for run in curved:
            points = [(s, run.evals[s].accuracy(suite)) for s in sorted(run.evals)]
            points = [(s, a) for s, a in points if a is not None]
            if not points:
                continue
            color, dash = styles[run.name]
            steps, accs = zip(*points, strict=True)
            ax.plot(steps, accs, color=color, linestyle=dash, marker="o", markersize=3,
                    label=run.name)
            if run.name in sat_steps:
                ax.axvline(sat_steps[run.name], color=color, linestyle=":", alpha=0.7)
        top = max([a for line in ax.get_lines() for a in line.get_ydata()] or [0.0])
        ax.set(title=suite, xlabel="step", ylabel="strict accuracy (avg@k)",
               ylim=(-0.01, min(1.02, max(0.1, top + 0.05))))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(alpha=0.3)
    for ax in axes[len(suites):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4),
                   fontsize=8)
    return _png(fig)


def _err(est: Estimate) -> tuple[float, float]:
    if not est.has_interval:
        return 0.0, 0.0
    return max(0.0, est.value - est.low), max(0.0, est.high - est.value)


def waterfall_plot(base: Estimate | None, conditions: Sequence[ConditionResult]) -> bytes | None:
    """Accuracy of the base and of each condition (mean over its seeds), 95% intervals."""
    if base is None or not conditions:
        return None
    bars = [("base", base), *((c.role, c.accuracy) for c in conditions)]
    fig = _figure(1.3 * len(bars) + 2.5, 3.8)
    ax = fig.subplots()
    for x, (label, est) in enumerate(bars):
        ax.bar(x, est.value, color=ROLE_COLORS.get(label, "#333333"), width=0.6,
               edgecolor="black", linewidth=0.5)
        ax.errorbar(x, est.value, yerr=[[_err(est)[0]], [_err(est)[1]]], color="black",
                    capsize=4, linewidth=1)
        ax.text(x, est.value + _err(est)[1] + 0.02, f"{100 * est.value:.1f}", ha="center",
                fontsize=8)
    ax.axhline(base.value, color="#777777", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(bars)), [b[0].replace(" ", "\n", 1) for b in bars], fontsize=8)
    ax.set_ylabel("strict accuracy")
    ax.set_ylim(0, min(1.1, max(e.value + _err(e)[1] for _, e in bars) + 0.12))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def decomposition_bars(comparisons: Sequence[RunComparison]) -> bytes | None:
    """Per run, the gain and its four terms (all suites), with 95% intervals."""
    if not comparisons:
        return None
    fig = _figure(max(6.0, 1.6 * len(comparisons) + 2), 4.0)
    ax = fig.subplots()
    width = 0.8 / len(TERMS)
    for j, term in enumerate(TERMS):
        for i, c in enumerate(comparisons):
            est = c.total.terms[term]
            x = i + (j - (len(TERMS) - 1) / 2) * width
            ax.bar(x, 100 * est.value, width=width, color=TERM_COLORS[term],
                   label=term.replace("_", " ") if i == 0 else None)
            low, high = _err(est)
            ax.errorbar(x, 100 * est.value, yerr=[[100 * low], [100 * high]], color="black",
                        capsize=2, linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(comparisons)), [c.run for c in comparisons], fontsize=8)
    ax.set_ylabel("accuracy points")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside upper center", ncol=len(TERMS), fontsize=8)
    return _png(fig)


def mode_share_plot(series: Sequence[tuple[str, list[int], dict[str, list[float]]]]
                    ) -> bytes | None:
    """Stacked style shares over training steps, one panel per run: (run, steps, {style: shares})."""
    series = [s for s in series if len(s[1]) >= 2]
    if not series:
        return None
    rows, cols = _grid(len(series))
    fig = _figure(4.0 * cols, 3.0 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    styles = list(dict.fromkeys(st for _, _, shares in series for st in shares))
    colors = {st: STYLE_COLORS[i % len(STYLE_COLORS)] for i, st in enumerate(styles)}
    for ax, (run, steps, shares) in zip(axes, series, strict=False):
        names = [st for st in styles if st in shares]
        ax.stackplot(steps, [shares[st] for st in names], labels=names,
                     colors=[colors[st] for st in names], alpha=0.9)
        ax.set(title=run, xlabel="step", ylabel="share of responses", ylim=(0, 1))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    for ax in axes[len(series):]:
        ax.set_visible(False)
    handles = [axes[0].fill_between([], [], color=colors[st], label=st) for st in styles]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(styles), fontsize=8)
    return _png(fig)


def zero_variance_plot(runs: Sequence[Run]) -> bytes | None:
    """Fraction of rollout groups whose rewards all agree (no gradient), per step."""
    trained = [(r, [(m.step, m.raw.get("zero_var_frac")) for m in r.metrics]) for r in runs]
    trained = [(r, [(s, v) for s, v in pts if isinstance(v, (int, float))]) for r, pts in trained]
    trained = [(r, pts) for r, pts in trained if pts]
    if not trained:
        return None
    styles = _linestyles([r for r, _ in trained])
    fig = _figure(7.5, 3.4)
    ax = fig.subplots()
    for run, points in trained:
        color, dash = styles[run.name]
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, color=color, linestyle=dash, label=run.name)
    ax.set(xlabel="step", ylabel="zero-variance groups", ylim=(-0.03, 1.03))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    return _png(fig)


def pass_at_k_plot(panels: Sequence[tuple[str, Sequence[int], Sequence[Estimate],
                                          Sequence[Estimate]]]) -> bytes | None:
    """pass@k of the base and of the trained model against k (log scale), one panel per
    (title, ks, base, trained), 95% intervals as bands: curves that meet or cross at large k
    are what selection without new skill looks like."""
    panels = [p for p in panels if len(p[1]) >= 2]
    if not panels:
        return None
    fig = _figure(4.2 * len(panels), 3.3)
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (title, ks, base, trained) in zip(axes, panels, strict=True):
        for label, curve, color in (("base", base, ROLE_COLORS["base"]),
                                    ("outcome", trained, ROLE_COLORS["outcome"])):
            ax.plot(ks, [e.value for e in curve], marker="o", color=color, label=label)
            if all(e.has_interval for e in curve):
                ax.fill_between(ks, [e.low for e in curve], [e.high for e in curve],
                                color=color, alpha=0.2, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(ks), [str(k) for k in ks])
        ax.set(title=title, xlabel="k (samples)", ylabel="pass@k", ylim=(0, 1.05))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    return _png(fig)
