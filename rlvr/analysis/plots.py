"""The report's figures as PNG bytes (matplotlib's Agg canvas; no pyplot global state).

Every function returns None when it has nothing to draw, so the report can say so instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from rlvr.analysis.rundir import Run
from rlvr.analysis.saturation import Saturation
from rlvr.analysis.study import Analysis, RunComparison
from rlvr.analysis.transitions import CLASS_LABELS, CLASSES, WaterfallRow

__all__ = [
    "ROLE_COLORS",
    "format_class_bars",
    "test_accuracy_curves",
    "training_curves",
    "transition_heatmaps",
    "waterfall_plot",
]

ROLE_COLORS = {
    "base": "#7f7f7f", "entropy-only": "#9467bd", "random": "#8c564b",
    "format-only": "#ff7f0e", "outcome": "#2ca02c", "guessable wrong label": "#1f77b4",
    "unguessable wrong label": "#d62728", "wrong label": "#17becf", "eval": "#bcbd22",
}
CLASS_COLORS = {"correct": "#2ca02c", "formatted_wrong": "#1f77b4",
                "format_failure": "#ff7f0e", "repetition": "#9467bd", "truncated": "#8c564b"}
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
        ax.set(title=suite, xlabel="step", ylabel="strict accuracy",
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


def waterfall_plot(rows: Sequence[WaterfallRow]) -> bytes | None:
    """Base → exploration/perturbation → format-only → outcome, one panel per suite."""
    if not rows:
        return None
    panels, cols = _grid(len(rows))
    fig = _figure(4.2 * cols, 3.4 * panels)
    axes = fig.subplots(panels, cols, squeeze=False).ravel()
    colors = {"base": ROLE_COLORS["base"], "exploration / perturbation": ROLE_COLORS["random"],
              "format-only": ROLE_COLORS["format-only"], "outcome": ROLE_COLORS["outcome"]}
    for ax, row in zip(axes, rows, strict=False):
        stages = row.stages()
        previous = 0.0
        for x, (label, level) in enumerate(stages):
            bottom, height = (0.0, level) if x == 0 else (previous, level - previous)
            ax.bar(x, height, bottom=bottom, color=colors[label], edgecolor="black",
                   linewidth=0.5, width=0.6)
            text = f"{100 * level:.1f}" if x == 0 else f"{100 * (level - previous):+.1f}"
            ax.text(x, max(previous, level) + 0.02, text, ha="center", fontsize=8)
            if x:
                ax.plot([x - 1.3, x - 0.3], [previous, previous], color="#555555",
                        linewidth=0.6)
            previous = level
        ax.set_xticks(range(len(stages)),
                      [label.replace(" / ", "/\n") for label, _ in stages], fontsize=7)
        title = f"{row.suite} (n={row.n_items})"
        if row.residual is not None:
            title += f"\noutcome − format: {100 * row.residual:+.1f} pts"
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, min(1.08, max(level for _, level in stages) + 0.15))
        ax.set_ylabel("strict accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    return _png(fig)


def transition_heatmaps(comparisons: Sequence[RunComparison]) -> bytes | None:
    """Per run, items moving from their base class (rows) to their trained class (columns)."""
    if not comparisons:
        return None
    rows, cols = _grid(len(comparisons), 2)
    fig = _figure(5.6 * cols, 4.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    short = [CLASS_LABELS[c].replace(" but ", "\nbut ").replace(" failure", "\nfailure")
             for c in CLASSES]
    for ax, comparison in zip(axes, comparisons, strict=False):
        total = comparison.total or comparison.suites[0]
        matrix = [[total.transitions[(a, b)] for b in CLASSES] for a in CLASSES]
        peak = max(max(r) for r in matrix) or 1.0
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=peak)
        for i, line in enumerate(matrix):
            for j, value in enumerate(line):
                label = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 * peak else "black")
        ax.set_xticks(range(len(CLASSES)), short, fontsize=7)
        ax.set_yticks(range(len(CLASSES)), short, fontsize=7)
        ax.set_xlabel(f"{comparison.run} (step {comparison.step})", fontsize=8)
        ax.set_ylabel("base", fontsize=8)
        ax.set_title(f"{comparison.run}: {total.suite}, {total.n_items} items", fontsize=9)
    for ax in axes[len(comparisons):]:
        ax.set_visible(False)
    return _png(fig)


def format_class_bars(analysis: Analysis) -> bytes | None:
    """Share of items per class for the base and each run, over the suites each shares.

    The base bar is measured on the first run's common items; runs on other item sets get a
    note in the report, not a second base bar.
    """
    bars: list[tuple[str, dict[str, float]]] = []
    for comparison in analysis.comparisons:
        total = comparison.total or comparison.suites[0]
        if not bars:
            bars.append((f"base ({total.n_items} items)", total.class_rates("base")))
        bars.append((comparison.run, total.class_rates("trained")))
    if not bars:
        return None
    fig = _figure(10, 0.45 * len(bars) + 1.4)
    ax = fig.subplots()
    labels = [name for name, _ in bars][::-1]
    left = [0.0] * len(bars)
    for cls in CLASSES:
        widths = [rates[cls] for _, rates in bars][::-1]
        ax.barh(labels, widths, left=left, color=CLASS_COLORS[cls], label=CLASS_LABELS[cls],
                edgecolor="white", linewidth=0.5)
        for y, (x0, w) in enumerate(zip(left, widths, strict=True)):
            if w >= 0.06:
                ax.text(x0 + w / 2, y, f"{100 * w:.0f}%", ha="center", va="center",
                        fontsize=7, color="white")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of items")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncol=len(CLASSES),
               fontsize=8)
    return _png(fig)
