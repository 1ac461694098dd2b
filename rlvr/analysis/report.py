"""The report: one self-contained HTML page (figures as base64 PNGs) and a Markdown summary.

Both are rendered from the same `Table`s, so the terminal and the page never disagree. Numbers
are accuracy points (percent of items); a gain column carries its sign.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rlvr.analysis import plots
from rlvr.analysis.study import Analysis, RunComparison
from rlvr.analysis.transitions import (
    CLASS_LABELS,
    CLASSES,
    SuiteDecomposition,
    item_transitions,
)

__all__ = ["Table", "decomposition_table", "headline", "render_html", "render_markdown", "tables"]


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    group: bool = False  # the first column repeats: show it once per run of equal values
    emphasis: tuple[int, ...] = ()  # rows to show in bold (totals)


def _pts(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _who(run: str, role: str) -> str:
    return run if run == role else f"{run} ({role})"


def _decomposition_row(run: str, row: SuiteDecomposition) -> tuple[str, ...]:
    return (run, row.suite, str(row.n_items), _pts(row.base_acc), _pts(row.trained_acc),
            _pts(row.gain, True), _pts(row.format_correction, True),
            _pts(row.reasoning_selection, True), _pts(row.degeneration_fix, True),
            _pts(-row.losses, True) if row.losses else "0.0")


def decomposition_table(analysis: Analysis) -> Table:
    rows, bold = [], []
    for c in analysis.comparisons:
        for row in c.suites:
            rows.append(_decomposition_row(_who(c.run, c.role), row))
        if c.total:
            bold.append(len(rows))
            rows.append(_decomposition_row(_who(c.run, c.role), c.total))
    return Table(
        "Decomposition per suite",
        ("run", "suite", "items", "base %", "trained %", "gain", "format correction",
         "reasoning-mode selection", "degeneration fix", "losses"),
        tuple(rows),
        f"Strict accuracy, points. Base: {analysis.base_label or 'none'}. gain = format "
        "correction (base unboxed/empty/no answer → correct) + reasoning-mode selection (base "
        "boxed but wrong → correct) + degeneration fix (base looped or truncated → correct) − "
        "losses (base correct → not).",
        group=True, emphasis=tuple(bold),
    )


def _runs_table(analysis: Analysis) -> Table:
    sats = {s.run: s for s in analysis.saturations}
    rows = []
    if analysis.base is not None and analysis.base not in analysis.runs:
        rows.append((analysis.base.name, "base", "—", "—", "0",
                     ", ".join(map(str, sorted(analysis.base.evals))) or "none", "—", "—"))
    for run in analysis.runs:
        last = run.metrics[-1].train_acc_mean if run.metrics else None
        sat = sats.get(run.name)
        rows.append((
            run.name, run.role, run.reward_mode or "—", run.label or "—", str(len(run.metrics)),
            ", ".join(map(str, sorted(run.evals))) or "none", _pts(last),
            "—" if sat is None or sat.step is None else str(sat.step),
        ))
    return Table("Runs", ("run", "role", "reward.mode", "label", "steps logged",
                          "evaluated steps", "final train acc %", "saturation step"),
                 tuple(rows))


def _waterfall_table(analysis: Analysis) -> Table:
    rows = []
    for row in (*analysis.waterfall, *((analysis.waterfall_mean,) if analysis.waterfall_mean
                                       else ())):
        rows.append((row.suite, str(row.n_items), _pts(row.base),
                     *(_pts(row.levels[r]) for r in ("entropy-only", "random", "format-only",
                                                     "outcome")),
                     _pts(row.residual, True)))
    return Table("Waterfall: base → exploration / perturbation → format-only → outcome",
                 ("suite", "items", "base", "entropy-only", "random", "format-only", "outcome",
                  "outcome − format"), tuple(rows),
                 "Strict accuracy, points; each role is the mean over its runs, all measured on "
                 "the items every run shares. outcome − format is the gain beyond format "
                 "correction.")


def _saturation_table(analysis: Analysis) -> Table:
    rows = []
    for sat in analysis.saturations:
        step = "not reached" if sat.step is None else str(sat.step)
        if not sat.heldout:
            rows.append((sat.run, sat.anchor or "—", step, "—", "—", "—", "—", "—"))
        for h in sat.heldout:
            rows.append((sat.run, sat.anchor, step, h.suite,
                         f"{_pts(h.before_acc)} (step {h.before_step})",
                         "—" if h.after_step is None else f"{_pts(h.after_acc)} (step "
                         f"{h.after_step})", _pts(h.change, True), _pts(h.best_after)))
    return Table("Post-saturation generalization",
                 ("run", "anchor", "saturation step", "suite", "held-out before", "held-out after",
                  "change", "best after"), tuple(rows),
                 f"Saturation: the first step from which the anchor's train accuracy stays ≥ "
                 f"{analysis.threshold:g} for {analysis.window} logged steps.", group=True)


def _labels_table(analysis: Analysis) -> Table:
    suites = sorted({s for row in analysis.labels for s in row.accuracy})
    rows = []
    for row in analysis.labels:
        cells = []
        for suite in suites:
            acc, gain = row.accuracy.get(suite), row.gain.get(suite)
            cells.append("—" if acc is None else _pts(acc) + (
                f" ({_pts(gain, True)})" if gain is not None else ""))
        sat = ", ".join("—" if s is None else str(s) for s in row.saturation)
        rows.append((row.condition, ", ".join(row.runs), ", ".join(x for x in row.labels if x)
                     or "—", *cells, _pts(row.train_acc), _pts(row.reward_mean), sat))
    return Table("Label study", ("condition", "runs", "label", *[f"{s} % (gain)" for s in suites],
                                 "final train acc % (true gold)", "final reward mean %",
                                 "saturation step"), tuple(rows),
                 "Accuracy on held-out suites after training; gain over the base in parentheses.")


def _transition_table(comparison: RunComparison) -> Table:
    total = comparison.total or comparison.suites[0]
    rows = []
    for a in CLASSES:
        counts = [total.transitions[(a, b)] for b in CLASSES]
        rows.append((CLASS_LABELS[a], *(f"{c:g}" if c == int(c) else f"{c:.2f}"
                                        for c in counts), f"{sum(counts):g}"))
    return Table(f"Transitions: {comparison.run} ({total.suite}, {total.n_items} items)",
                 ("base ↓ / trained →", *(CLASS_LABELS[c] for c in CLASSES), "total"),
                 tuple(rows))


_ITEM_ROWS = 200  # per run; the page must stay readable on a 500-item suite


def _changed_items(analysis: Analysis, comparison: RunComparison) -> Table:
    """Items whose class set differs between base and run (the per-item transition list)."""
    run = next(r for r in analysis.runs if r.name == comparison.run)
    rows = []
    for suite, item, before, after in item_transitions(analysis.base_step,
                                                       run.evals[comparison.step]):
        if sorted(before) != sorted(after):
            rows.append((suite, item, ", ".join(CLASS_LABELS[c] for c in before),
                         ", ".join(CLASS_LABELS[c] for c in after)))
    shown = rows[:_ITEM_ROWS]
    more = f" (first {_ITEM_ROWS} of {len(rows)})" if len(rows) > _ITEM_ROWS else ""
    return Table(f"Items that changed class: {comparison.run}{more}",
                 ("suite", "item", "base", comparison.run), tuple(shown))


def tables(analysis: Analysis) -> dict[str, Table]:
    return {
        "runs": _runs_table(analysis),
        "decomposition": decomposition_table(analysis),
        "waterfall": _waterfall_table(analysis),
        "saturation": _saturation_table(analysis),
        "labels": _labels_table(analysis),
    }


def headline(analysis: Analysis) -> list[str]:
    lines = []
    for c in analysis.comparisons:
        t = c.total or c.suites[0]
        lines.append(
            f"{_who(c.run, c.role)}, {t.suite}: {_pts(t.base_acc)} → {_pts(t.trained_acc)} "
            f"({_pts(t.gain, True)} pts) = format correction {_pts(t.format_correction, True)} "
            f"+ reasoning-mode selection {_pts(t.reasoning_selection, True)} + degeneration fix "
            f"{_pts(t.degeneration_fix, True)} − losses {_pts(t.losses)}")
    return lines


# --- Markdown ---------------------------------------------------------------------------------

def _markdown_table(table: Table) -> str:
    if not table.rows:
        return f"### {table.title}\n\n(nothing to show)\n"
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def render_markdown(analysis: Analysis) -> str:
    parts = ["## rlvr report", ""]
    parts += [f"- {line}" for line in headline(analysis)] or ["- no decomposition"]
    parts.append("")
    found = tables(analysis)
    for key in ("decomposition", "waterfall", "saturation", "labels"):
        if found[key].rows:
            parts.append(_markdown_table(found[key]))
    if analysis.notes:
        parts += ["### Comparisons that cannot be made / notes", ""]
        parts += [f"- {note}" for note in analysis.notes]
    return "\n".join(parts).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------------

_NUMERIC = re.compile(r"^[+−\-]?\d[\d.,]*( \(.*\))?$|^—$")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d2330;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:2px solid #e3e6ea;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5b6472;font-size:13px}.caption{color:#5b6472;font-size:12.5px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;width:100%}
th,td{border:1px solid #d9dde3;padding:4px 8px;vertical-align:top}
th{background:#eef1f5;text-align:left;font-weight:600}td{white-space:nowrap}
td:first-child{white-space:normal}.scroll{overflow-x:auto}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}tbody tr:nth-child(even){background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:8px 0 16px;border:1px solid #eceff3}
.notes{background:#fff7e0;border:1px solid #f0d48a;border-radius:6px;padding:8px 14px;
font-size:13px}.notes li{margin:2px 0}.headline{font-size:14px}.empty{color:#8a93a0;font-style:italic}
tr.total td{font-weight:600;background:#f1f6ee}tr.first td{border-top:2px solid #b9c0ca}
details{margin:6px 0 14px}summary{cursor:pointer;color:#34507a;font-size:14px}
"""


def _html_table(table: Table, level: str | None = "h3") -> str:
    out = [f"<{level}>{html.escape(table.title)}</{level}>"] if level else []
    if table.caption:
        out.append(f'<p class="caption">{html.escape(table.caption)}</p>')
    if not table.rows:
        out.append('<p class="empty">Nothing to show (see the notes above).</p>')
        return "\n".join(out)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    out.append(f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>')
    previous = None
    for index, row in enumerate(table.rows):
        shown = list(row)
        if table.group and row[0] == previous:
            shown[0] = ""
        previous = row[0]
        cells = "".join(
            f'<td class="num">{html.escape(c)}</td>' if i and _NUMERIC.match(c)
            else f"<td>{html.escape(c)}</td>" for i, c in enumerate(shown))
        style = ' class="total"' if index in table.emphasis else (
            ' class="first"' if table.group and shown[0] else "")
        out.append(f"<tr{style}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return f'<p class="empty">No data for: {html.escape(alt)}.</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _sections(analysis: Analysis, found: dict[str, Table]) -> list[str]:
    runs = list(analysis.runs)
    body = ["<h2>Where the gain came from</h2>", _html_table(found["decomposition"], None),
            "<h3>Format classes, base vs each run</h3>",
            _img(plots.format_class_bars(analysis), "format-class bars"),
            "<h3>Transitions between classes</h3>",
            '<p class="caption">Rows: the class of an item for the base; columns: for the '
            "trained run. Item counts (fractions when several samples per item).</p>",
            _img(plots.transition_heatmaps(analysis.comparisons), "transition heat maps")]
    if analysis.comparisons:
        body.append("<details><summary>Transition tables (numbers)</summary>")
        body += [_html_table(_transition_table(c)) for c in analysis.comparisons]
        body.append("</details>")
        body.append("<details><summary>Per-item transitions (items whose class changed)"
                    "</summary>")
        body += [_html_table(_changed_items(analysis, c)) for c in analysis.comparisons]
        body.append("</details>")
    body += [f"<h2>{html.escape(found['waterfall'].title)}</h2>",
             _html_table(found["waterfall"], None),
             _img(plots.waterfall_plot([*analysis.waterfall, *((analysis.waterfall_mean,) if
                                                               analysis.waterfall_mean else ())]),
                  "waterfall")]
    body += ["<h2>Training and post-saturation</h2>", _html_table(found["saturation"]),
             "<h3>Training curves</h3>",
             _img(plots.training_curves(runs, analysis.saturations), "training curves"),
             "<h3>Held-out accuracy over steps</h3>",
             _img(plots.test_accuracy_curves(runs, analysis.saturations),
                  "test accuracy over steps")]
    body += ["<h2>Label study</h2>", _html_table(found["labels"], None)]
    return body


def render_html(analysis: Analysis, title: str = "1-shot RLVR: where did the gain come from?"
                ) -> str:
    found = tables(analysis)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">Base: {html.escape(analysis.base_label or "none")} · '
            f"{len(analysis.runs)} run(s) · generated {when} by rlvr report</p>"]
    lines = headline(analysis)
    if lines:
        head.append('<ul class="headline">' + "".join(f"<li>{html.escape(x)}</li>"
                                                      for x in lines) + "</ul>")
    if analysis.notes:
        head.append('<div class="notes"><b>Comparisons that cannot be made, and other notes</b>'
                    "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in analysis.notes)
                    + "</ul></div>")
    head.append(_html_table(found["runs"], "h2"))
    body = _sections(analysis, found)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
            + "\n".join([*head, *body]) + "\n</main></body></html>\n")
