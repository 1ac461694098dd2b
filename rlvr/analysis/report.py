"""The report: one self-contained HTML page (figures as base64 PNGs), a Markdown summary and
the claims checklist (`claims.json`).

All three are rendered from the same `Analysis` and `Table`s (tables.py), so the terminal, the
page and the JSON never disagree. Numbers are accuracy points with 95% intervals.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from rlvr.analysis import plots
from rlvr.analysis.claims import Claim, check_claims, claims_json
from rlvr.analysis.compute import Analysis
from rlvr.analysis.narrative import examples, opening, setup, style_series
from rlvr.analysis.report_tables import Table, ci, tables, who

__all__ = ["headline", "image_tag", "render_html", "render_markdown", "write_claims", "write_report"]


def headline(analysis: Analysis) -> list[str]:
    lines = []
    for c in analysis.comparisons:
        t = c.total
        terms = ", ".join(f"{name.replace('_', ' ')} {ci(t.terms[name], True)}"
                          for name in ("format_correction", "degeneration_fix", "mode_selection",
                                       "skill_change"))
        lines.append(f"{who(c.run, c.role)}, {t.suite}: {ci(t.base_acc)} → {ci(t.trained_acc)} "
                     f"(gain {ci(t.gain, True)} pts) = {terms}")
    return lines


# --- Markdown ---------------------------------------------------------------------------------

def _markdown_table(table: Table) -> str:
    if not table.rows:
        return f"### {table.title}\n\n(nothing to show)\n"
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def render_markdown(analysis: Analysis, claims: list[Claim] | None = None) -> str:
    claims = check_claims(analysis) if claims is None else claims
    parts = ["## rlvr report", ""]
    parts += opening(analysis, claims)
    parts += [""] + ([f"- {line}" for line in headline(analysis)] or ["- no decomposition"])
    parts.append("")
    found = tables(analysis, claims)
    for key in ("accuracy", "decomposition", "coverage", "conditions", "contrasts", "claims",
                "saturation", "labels", "groups"):
        if found[key].rows:
            parts.append(_markdown_table(found[key]))
    if analysis.notes:
        parts += ["### Comparisons that cannot be made / notes", ""]
        parts += [f"- {note}" for note in analysis.notes]
    return "\n".join(parts).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------------

_NUMERIC = re.compile(r"^[+−\-]?\d[\d.,]*( \[.*\])?( ≈0)?( \(.*\))?$|^—$")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d2330;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:2px solid #e3e6ea;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5b6472;font-size:13px}.caption{color:#5b6472;font-size:12.5px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;width:100%}
th,td{border:1px solid #d9dde3;padding:4px 8px;vertical-align:top}
th{background:#eef1f5;text-align:left;font-weight:600}td{white-space:normal}
td:first-child{white-space:normal}.scroll{overflow-x:auto}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}tbody tr:nth-child(even){background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:8px 0 16px;border:1px solid #eceff3}
.notes{background:#fff7e0;border:1px solid #f0d48a;border-radius:6px;padding:8px 14px;
font-size:13px}.notes li{margin:2px 0}.headline{font-size:14px}.empty{color:#8a93a0;font-style:italic}
tr.total td{font-weight:600;background:#f1f6ee}tr.first td{border-top:2px solid #b9c0ca}
details{margin:6px 0 14px}summary{cursor:pointer;color:#34507a;font-size:14px}
.opening{font-size:15px;background:#eef5ff;border:1px solid #b8d0f0;border-radius:6px;
padding:8px 14px}pre{white-space:pre-wrap;font-size:12px;margin:0}
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


def image_tag(png: bytes | None, alt: str) -> str:
    if png is None:
        return f'<p class="empty">No data for: {html.escape(alt)}.</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _examples_table(analysis: Analysis) -> Table:
    run, found = examples(analysis)
    return Table(f"Example responses per style: base → {run}" if run else "Example responses",
                 ("style", "base", run or "trained"),
                 tuple((e.style, e.before, e.after) for e in found),
                 "The first response of each style in each evaluation (✓ strictly right, ✗ not),"
                 " cut at 160 characters.")


def _sections(analysis: Analysis, found: dict[str, Table]) -> list[str]:
    runs = list(analysis.runs)
    # The base bar is the accuracy the gains are measured from (decomposition's `all`).
    base_acc = analysis.comparisons[0].total.base_acc if analysis.comparisons else None
    series = [style_series(r, analysis.classifier) for r in runs if r.is_training]
    return [
        "<h2>Claims checklist</h2>", _html_table(found["claims"], None),
        "<h2>Accuracy</h2>", _html_table(found["accuracy"], None),
        "<h2>Where the gain came from</h2>", _html_table(found["decomposition"], None),
        image_tag(plots.decomposition_bars(analysis.comparisons), "decomposition bars"),
        _html_table(found["styles"]),
        _html_table(found["coverage"]),
        "<h2>Conditions and contrasts</h2>", _html_table(found["conditions"], None),
        image_tag(plots.waterfall_plot(base_acc, analysis.conditions), "waterfall"),
        _html_table(found["contrasts"]),
        "<h2>Reasoning styles over training</h2>",
        image_tag(plots.mode_share_plot(series), "style shares over steps"),
        _html_table(_examples_table(analysis)),
        "<h2>Training and post-saturation</h2>", _html_table(found["saturation"]),
        "<h3>Training curves</h3>",
        image_tag(plots.training_curves(runs, analysis.saturations), "training curves"),
        "<h3>Zero-variance groups over steps</h3>",
        image_tag(plots.zero_variance_plot(runs), "zero-variance fraction"),
        "<h3>Held-out accuracy over steps</h3>",
        image_tag(plots.test_accuracy_curves(runs, analysis.saturations),
             "test accuracy over steps"),
        "<h2>Label study</h2>", _html_table(found["labels"], None),
    ] + (["<h2>Results by group</h2>", _html_table(found["groups"], None)]
         if found["groups"].rows else [])


def render_html(analysis: Analysis, title: str = "1-shot RLVR: where did the gain come from?",
                claims: list[Claim] | None = None) -> str:
    claims = check_claims(analysis) if claims is None else claims
    found = tables(analysis, claims)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">Base: {html.escape(analysis.base_label or "none")} · '
            f"{len(analysis.runs)} run(s) · generated {when} by rlvr report</p>",
            '<div class="opening">' + "".join(f"<p>{html.escape(x)}</p>"
                                              for x in opening(analysis, claims)) + "</div>"]
    head.append("<h2>Setup</h2><table><tbody>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td style=\"white-space:normal\">{html.escape(v)}</td>"
        "</tr>" for k, v in setup(analysis)) + "</tbody></table>")
    if analysis.notes:
        head.append('<div class="notes"><b>Comparisons that cannot be made, and other notes</b>'
                    "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in analysis.notes)
                    + "</ul></div>")
    head.append(_html_table(found["runs"], "h2"))
    body = _sections(analysis, found)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
            + "\n".join([*head, *body]) + "\n</main></body></html>\n")


def write_claims(analysis: Analysis, folder: str | Path,
                 claims: list[Claim] | None = None) -> Path:
    """`folder/claims.json`: the checklist as the list of #13's schema."""
    from rlvr.rundir.write import atomic_write_text

    claims = check_claims(analysis) if claims is None else claims
    out = Path(folder) / "claims.json"
    atomic_write_text(out, json.dumps(claims_json(claims), indent=2) + "\n")
    return out


def write_report(analysis: Analysis, out: str | Path, title: str | None = None) -> Path:
    """The page at `out` and claims.json beside it (one checklist for both)."""
    from rlvr.rundir.write import atomic_write_text

    out = Path(out)
    claims = check_claims(analysis)
    page = render_html(analysis, claims=claims) if title is None else render_html(
        analysis, title=title, claims=claims)
    atomic_write_text(out, page)
    return write_claims(analysis, out.parent, claims)
