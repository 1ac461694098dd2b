"""The demo's results: claims per anchor kind, C8 and C9, reports and `claims.json`.

Training claims (C1-C7) are checked once per training anchor kind (variance-top,
working-required) on that anchor's runs only, so no condition is pooled across anchors; each
row names its `anchor` and `anchor_kind`. C7 reads "not testable on this anchor" where no base
sample wrote a wrong boxed answer (no guessable label exists). C9 compares the outcome gains
from the four anchor kinds; C8 the gain of the demo's model with a weaker organism's, both
trained from the working-required anchor. Rules: docs/analysis.md.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rlvr.errors import UserError

__all__ = ["PLUMBING", "WEAK", "WORK_ACC", "Layout", "claim_row", "gain_estimates", "gold", "layout",
           "load_demo",
           "sample_summary", "write_all", "working_skill"]

WORK_ACC = 0.5  # the weaker organism's corpus.work_acc (the demo's model has 1.0)
WEAK = f"work_acc-{WORK_ACC:g}"
NOT_TESTABLE = "not testable on this anchor"
PLUMBING = ("PLUMBING CHECK (--quick): sizes far below what a verdict needs; every claim reads "
            "'too small to judge'. Run `rlvr demo` without --quick for results.")
C8_TEXT = "less latent capability (skill) gives a smaller gain"
C9_TEXT = ("a good anchor is one the base partially solves with high reward variance, "
           "not the hardest")
CONTRAST = (
    "Why two anchors. Historical variance (the paper's criterion) favours a problem the "
    "organism's carry-free guess half-solves; there the guess earns the reward as often as "
    "working, so outcome RL can shift the model toward the shortcut, and no wrong mode writes "
    "a wrong answer (no guessable label). The working-required anchor is the top-variance "
    "problem on which the guess writes a wrong boxed answer and boxed working is right: only "
    "the latent skill earns the reward, which is the picture the paper describes.")


def gold(anchor: str) -> str:
    from rlvr.rl.problem_sets import organism_problem

    return organism_problem(anchor).answer


def sample_summary(answers: list[dict]) -> dict[str, Any]:
    """What the base wrote on one candidate: accuracy, styles, wrong boxed answers by style."""
    wrong = Counter(a["style"] for a in answers if a["format"] == "boxed" and not a["correct"])
    return {"n": len(answers), "accuracy": sum(a["correct"] for a in answers) / len(answers),
            "styles": dict(Counter(a["style"] for a in answers)),
            "wrong_boxed_by_style": dict(wrong)}


@dataclass
class Layout:
    """Where every run of the demo lives (see `layout`)."""

    anchors: dict[str, str | None]
    seeds: list[int]
    training: dict[str, Path]  # kind → folder of its conditions (distinct anchors only)
    aliases: dict[str, str] = field(default_factory=dict)  # kind → the kind whose runs it shares
    c9_new: dict[str, list[Path]] = field(default_factory=dict)  # C9-only outcome runs
    c9_runs: dict[str, list[Path]] = field(default_factory=dict)  # every kind's outcome runs
    c8_base: Path = Path()
    c8_runs: list[Path] = field(default_factory=list)
    c8_kind: str = "working-required"

    @property
    def outcome_runs(self) -> dict[str, list[Path]]:
        """Each training anchor kind's outcome runs, in the order of `seeds`."""
        return {kind: self.c9_runs[kind] for kind in self.training}


def layout(out: Path, anchors: dict[str, str | None], seeds: list[int]) -> Layout:
    """OUT/<kind>/<condition>-s<seed> per distinct training anchor; OUT/c9/<kind>-s<seed> for
    the C9 anchors not trained already; OUT/c8/ for the weaker organism."""
    from rlvr.study.design import TRAINING_KINDS

    found = Layout(anchors, seeds, {})
    owner: dict[str, str] = {}
    for kind in TRAINING_KINDS:
        anchor = anchors.get(kind)
        if anchor is None:
            continue
        if anchor in owner:
            found.aliases[kind] = owner[anchor]
            continue
        owner[anchor] = kind
        found.training[kind] = out / kind
    for kind, anchor in anchors.items():
        if anchor is None:
            continue
        if anchor in owner:
            found.c9_runs[kind] = [out / owner[anchor] / f"outcome-s{s}" for s in seeds]
        else:
            found.c9_new[kind] = found.c9_runs[kind] = [out / "c9" / f"{kind}-s{s}"
                                                        for s in seeds]
            owner[anchor] = kind
    found.c8_kind = "working-required" if anchors.get("working-required") else "variance-top"
    found.c8_base = out / "c8" / f"{WEAK}-base"
    found.c8_runs = [out / "c8" / f"{WEAK}-s{s}" for s in seeds]
    return found


def load_demo(demo: Path) -> dict:
    record = demo / "protocol.json"
    if not record.is_file():
        raise UserError(f"{demo} is not a finished demo (no protocol.json)",
                        f"run `rlvr demo --out {demo}` first")
    return json.loads(record.read_text(encoding="utf-8"))


def gain_estimates(base: Path, runs: list[Path]):
    """Per run: its last evaluation's gain over `base` on the shared items (paired bootstrap,
    the same item draws for every run: rlvr.core.stats.two_level combines them)."""
    from rlvr.analysis.conditions import paired_items
    from rlvr.core.stats import paired_gain
    from rlvr.rundir.read import load_run

    base_step = load_run(base).evals[0]
    out = []
    for path in runs:
        run = load_run(path)
        if not run.evals:
            raise UserError(f"{path} has no evaluation")
        b, t = paired_items(base_step, run.evals[max(run.evals)])
        out.append(paired_gain(b, t))
    return out


def working_skill(run: Path, step: int = 0) -> tuple[float | None, int]:
    """Lenient accuracy (the right number, boxed or not) among the sampled base responses in
    the working style, and how many there were (None when there were none)."""
    from rlvr.decomposition.styles import organism_style

    hits = total = 0
    for path in sorted((run / "eval" / f"step-{step}").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["sample"] > 0 and organism_style(r["response"], r["format"],
                                                  r["finish_reason"]) == "work":
                hits += bool(r["correct_lenient"])
                total += 1
    return (hits / total if total else None), total


def claim_row(cid: str, text: str, measure: str, estimate, seeds: int, items: int,
           extra: dict) -> dict:
    from rlvr.analysis.claims import RULES, Claim, size_rule, verdict

    claim = Claim(cid, text, measure, RULES["positive"], estimate, seeds, items,
                  verdict(estimate, "positive"), extra=extra)
    return size_rule(claim).to_json()


def c9_entry(out: Path, lay: Layout) -> dict:
    from rlvr.core.stats import difference, two_level

    gains = {kind: gain_estimates(out / "base", dirs) for kind, dirs in lay.c9_runs.items()}
    by_anchor = {kind: {"anchor": lay.anchors[kind], **two_level(g).points()}
                 for kind, g in gains.items()}
    estimate, items = None, 0
    if "hardest" in gains:
        diffs = [difference(a, b) for a, b in zip(gains["variance-top"], gains["hardest"],
                                                  strict=True)]
        estimate, items = two_level(diffs), diffs[0].n
    row = claim_row("C9", C9_TEXT, "held-out avg@k gain (points) of outcome training from the "
                 "variance-top anchor minus from the hardest, paired by seed (all four anchor "
                 "kinds in by_anchor)", estimate, len(lay.seeds), items, {"by_anchor": by_anchor})
    return {**row, "anchor_kind": "by criterion"}


def c8_entry(out: Path, lay: Layout) -> dict:
    from rlvr.core.stats import difference, two_level

    default = gain_estimates(out / "base", lay.c9_runs[lay.c8_kind])
    weak = gain_estimates(lay.c8_base, lay.c8_runs)
    diffs = [difference(a, b) for a, b in zip(default, weak, strict=True)]
    skills = {"demo model": working_skill(out / "base"), WEAK: working_skill(lay.c8_base)}
    extra = {"gains": {"demo model": two_level(default).points(),
                       WEAK: two_level(weak).points()},
             "working_skill": {k: {"value": v, "samples": n} for k, (v, n) in skills.items()}}
    row = claim_row("C8", C8_TEXT, "held-out avg@k gain (points) of outcome training on the demo's "
                 f"model minus on the {WEAK} organism (less latent skill, same mode mix), both "
                 f"from the {lay.c8_kind} anchor, paired by seed", two_level(diffs),
                 len(lay.seeds), diffs[0].n, extra)
    return {**row, "anchor": lay.anchors[lay.c8_kind], "anchor_kind": lay.c8_kind}


def training_rows(out: Path, folder: Path, kind: str, anchor: str, p, *, quick: bool,
                  testable: bool) -> tuple[list[dict], str]:
    """C1-C7 of one training anchor kind (its runs only), its report page (the same rows as
    claims.json: C7 not testable where no guessable label exists) and Markdown."""
    from rlvr.analysis.claims import check_claims
    from rlvr.analysis.compute import analyze
    from rlvr.analysis.report import render_html, render_markdown, write_claims

    runs = sorted(d for d in folder.iterdir() if (d / "config.toml").is_file())
    analysis = analyze(runs, base=out / "base", threshold=p.threshold, window=p.window)
    claims = []
    for c in check_claims(analysis):
        if c.id in ("C8", "C9"):
            continue  # measured across anchors and organisms: OUT/claims.json has them
        if c.id == "C7" and not testable:
            c = replace(c, verdict=NOT_TESTABLE, note="no base sample wrote a wrong boxed "
                        "answer on this anchor, so no guessable label exists")
        claims.append(c)
    title = (("PLUMBING CHECK (--quick, too small to judge) · " if quick else "")
             + f"rlvr demo, {kind} anchor {anchor}: where did the gain come from?")
    (folder / "report.html").write_text(render_html(analysis, title=title, claims=claims),
                                        encoding="utf-8")
    write_claims(analysis, folder, claims)
    rows = [{**c.to_json(), "anchor": anchor, "anchor_kind": kind} for c in claims]
    return rows, f"## {kind} anchor {anchor}\n\n" + render_markdown(analysis, claims)


def write_all(out: Path, lay: Layout, p, *, quick: bool) -> tuple[Path, str]:
    """Every claims row into OUT/claims.json, a report per training anchor, OUT/report.html."""
    from rlvr.rundir.write import atomic_write_json
    from rlvr.study.coverage_check import coverage_checks

    protocol = load_demo(out)
    rows, markdown = [], []
    for kind in ("variance-top", "working-required"):
        source = lay.aliases.get(kind, kind)
        if source not in lay.training:
            continue
        labels = protocol["wrong_labels"].get(source, {})
        found, text = training_rows(out, lay.training[source], kind, lay.anchors[kind], p,
                                    quick=quick, testable=labels.get("guessable") is not None)
        rows += found
        markdown.append(text)
    checks = coverage_checks(out, lay.outcome_runs, lay.seeds)
    for row in rows:
        source = lay.aliases.get(row["anchor_kind"], row["anchor_kind"])
        if row["id"] == "C1" and source in checks:
            row["coverage"] = checks[source].to_json()
    rows += [c8_entry(out, lay), c9_entry(out, lay)]
    atomic_write_json(out / "claims.json", rows)
    page = out / "report.html"
    page.write_text(index_page(rows, lay, protocol, quick=quick, checks=checks),
                    encoding="utf-8")
    return page, "\n".join(markdown) + "\n" + claims_markdown(rows, quick=quick)


def _value(row: dict) -> str:
    if row.get("value") is None:
        return "—"
    ci = row.get("ci")
    return f"{row['value']:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")


def details(row: dict) -> str:
    """The claim's own parts, in a few words (the table's last column)."""
    def v(x):
        return "—" if not x else _value(x)

    parts = []
    if row["id"] == "C1":
        parts += [f"skill change {v(row.get('skill_change'))}",
                  f"previous rule: {row.get('previous_verdict')}"]
        if row.get("skill_damage"):
            parts.append("skill damage")
        if row.get("coverage"):
            parts.append(coverage_line(row["coverage"]))
        if row.get("skill_change_by_lr"):
            parts.append("skill change by lr factor: " + ", ".join(
                f"×{k} {v(x)}" for k, x in row["skill_change_by_lr"].items()))
    if row["id"] == "C4":
        parts.append(f"outcome − format-only {v(row.get('outcome_minus_format'))}")
    if row["id"] == "C5" and row.get("peak_step") is not None:
        parts.append(f"largest early gain at step {row['peak_step']}; fade "
                     f"{v(row.get('fade'))}")
    if row["id"] == "C6":
        matched = row.get("matched_settings")
        if matched and matched["value"] == 0 and matched.get("ci") == [0.0, 0.0]:
            # Every resample is 0 only when both sides count the same right answers on every
            # item in every seed: an identity, which an interval notation would hide.
            parts.append("matched KL/weight decay +0.0: the same right answers as "
                         "entropy-only on every item and seed (nothing to resample)")
        else:
            parts.append(f"matched KL/weight decay {v(matched)}")
    for name in ("random-clip", "random-noclip"):
        if name in row:
            fracs = [f for f in row[name]["clip_frac"] if f is not None]
            parts.append(f"{name} gain {v(row[name]['gain'])}, clip_frac "
                         f"{sum(fracs) / max(1, len(fracs)):.4f}")
    for kind, x in (row.get("by_anchor") or {}).items():
        parts.append(f"{kind} {x['anchor']} {v(x)}")
    for name, x in (row.get("gains") or {}).items():
        parts.append(f"{name} gain {v(x)}")
    if row.get("sensitivity"):
        parts.append("lr " + ", ".join(f"×{s['lr_factor']:g}: {s['verdict']}"
                                       for s in row["sensitivity"]))
    if row.get("note"):
        parts.append(row["note"])
    return "; ".join(parts).replace("|", "/")


def claims_markdown(rows: list[dict], *, quick: bool) -> str:
    lines = ([f"**{PLUMBING}**", ""] if quick else []) + [
        "| id | anchor kind | anchor | value (points) | seeds × items | verdict | robust | "
        "details |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['id']} | {r.get('anchor_kind') or '—'} | {r.get('anchor') or '—'} "
                     f"| {_value(r)} | {r['seeds']} × {r['items']} | {r['verdict']} | "
                     f"{r.get('robust') or '—'} | {details(r)} |")
    return "\n".join(lines) + "\n"


def coverage_line(c: dict) -> str:
    """C1's coverage check from its claims.json entry, in one line."""
    def at(i: int) -> str:
        d = c["difference"][i]
        if d.get("ci") == [0.0, 0.0] and c["base"][i]["value"] == 100:
            return "+0.0 (both solve every item)"
        return _value(d)

    only = "/".join(str(s["only_trained"]) for s in c["per_seed"])
    meet = c.get("meet_k")
    return (f"coverage ({c['samples']} samples × {c['items']} items): pass@{c['k'][0]} "
            f"{at(0)}, pass@{c['k'][-1]} {at(-1)}"
            + (f", no longer above the base from k = {meet}" if meet else "")
            + f"; solved only after training, per seed: {only}; {c['reading']}")


def _coverage_section(checks) -> str:
    from rlvr.analysis.plots import pass_at_k_plot
    from rlvr.analysis.report import image_tag

    if not checks:
        return ""
    png = pass_at_k_plot([(f"{kind} anchor", c.ks, c.base, c.trained)
                          for kind, c in checks.items()])
    lines = "".join(f"<li><b>{html.escape(kind)}</b>: {html.escape(coverage_line(c.to_json()))}"
                    "</li>" for kind, c in checks.items())
    return ("<h2>C1's coverage check: pass@k, base vs outcome runs</h2><p>The base and the "
            "outcome runs evaluated again with many samples on a subset of held-out items "
            "(mean over seeds, 95% two-level intervals). Selection among modes the base "
            "already has lifts pass@1 while pass@k at large k stays equal or falls.</p>"
            + image_tag(png, "pass@k curves") + f"<ul>{lines}</ul>")


def index_page(rows: list[dict], lay: Layout, protocol: dict, *, quick: bool,
               checks=None) -> str:
    """OUT/report.html: the claims of every anchor kind, the contrast, C1's coverage check,
    links to the reports."""
    banner = f'<p style="background:#fde68a;padding:8px"><b>{html.escape(PLUMBING)}</b></p>'
    links = "".join(f'<li><a href="{kind}/report.html">{kind} anchor {html.escape(str(a))}</a>'
                    "</li>" for kind, a in lay.anchors.items() if kind in lay.training)
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            r["id"], r.get("anchor_kind") or "—", r.get("anchor") or "—", r["claim"],
            _value(r), f"{r['seeds']} × {r['items']}", r["verdict"], r.get("robust") or "—",
            r.get("note") or "")) + "</tr>" for r in rows)
    return ("<!doctype html><meta charset='utf-8'><title>rlvr demo</title>"
            "<body style='font-family:sans-serif;max-width:1100px;margin:auto'>"
            "<h1>rlvr demo: where did the gain come from? (model organism)</h1>"
            + (banner if quick else "")
            + f"<p>Anchors: {html.escape(json.dumps(lay.anchors))}</p>"
            f"<p>{html.escape(CONTRAST)}</p><h2>Claims checklist</h2>"
            "<table border=1 cellpadding=4 style='border-collapse:collapse'><tr><th>id</th>"
            "<th>anchor kind</th><th>anchor</th><th>claim</th><th>value (points)</th>"
            "<th>seeds × items</th><th>verdict</th><th>robust</th><th>note</th></tr>"
            f"{table}</table>{_coverage_section(checks)}<h2>Reports per training anchor</h2><ul>{links}</ul></body>")


if __name__ == "__main__":  # README's claims table: python -m rlvr.study.findings CLAIMS.json
    import sys

    print(claims_markdown(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")),
                          quick=False), end="")
