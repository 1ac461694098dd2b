"""`rlvr report`: the HTML page and the Markdown summary, and bad input that must not stop it."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from matplotlib import image as mpimg
from rundirs import make_run

from rlvr.analysis import analyze
from rlvr.analysis.report import render_html, render_markdown
from rlvr.cli import main

PAGE_IMAGES = {"decomposition bars", "waterfall", "style shares over steps", "training curves",
               "zero-variance fraction", "test accuracy over steps"}
CLAIM_KEYS = {"id", "claim", "measure", "rule", "value", "ci", "seeds", "items", "verdict",
              "note", "anchor", "anchor_kind", "robust", "sensitivity"}

_IMG = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def images(page: str) -> dict[str, np.ndarray]:
    return {alt: mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
            for alt, data in _IMG.findall(page)}


def table_rows(page: str) -> list[int]:
    return [body.count("<tr") for body in re.findall(r"<tbody>(.*?)</tbody>", page, re.S)]


def ablation_runs(root):
    """Outcome, format-only, entropy-only, random and two wrong-label runs, three suites."""
    base = {"math": "CWUNRTWWUC", "amc": ["CW", "WW", "UC"], "org": "WWUU"}
    finals = {
        "outcome": ("outcome", None, {"math": "CCCCCTCWCC", "amc": ["CC", "CW", "CC"],
                                      "org": "CCCW"}),
        "format": ("format", None, {"math": "CWCWCTWWCC", "amc": ["CW", "WW", "CC"],
                                    "org": "WWCC"}),
        "entropy": ("none", None, {"math": "CWUNRTWWUW", "amc": ["CW", "WW", "UW"],
                                   "org": "WWUU"}),
        "random": ("random", None, {"math": "CWUNRWWWUC", "amc": ["WW", "WW", "UC"],
                                    "org": "CWUU"}),
        "guess": ("wrong_label", "guessable", {"math": "CCCCRTCWCC", "amc": ["CC", "WW", "CC"],
                                               "org": "CCWW"}),
    }
    # Four copies of each pattern, so every suite row holds enough items for an interval;
    # entropy-only changes one copy only (a move within noise).
    finals = {name: (mode, kind, {suite: base[suite] * 3 + spec if name == "entropy"
                                  else spec * 4 for suite, spec in final.items()})
              for name, (mode, kind, final) in finals.items()}
    base = {suite: spec * 4 for suite, spec in base.items()}
    paths = []
    for name, (mode, kind, final) in finals.items():
        paths.append(make_run(root, name, mode=mode, wrong_label_kind=kind, label="12.8"
                              if kind else None, train_acc=[0.25, 0.5, 1, 1, 1, 1],
                              evals={0: base, 3: final, 6: final}))
    return paths


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    paths = ablation_runs(root)
    out = root / "report.html"
    return paths, out


def test_cli_writes_a_self_contained_page_and_prints_markdown(full_report, capsys):
    paths, out = full_report
    code = main(["report", *map(str, paths), "-o", str(out), "--window", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| outcome | amc |" in printed and "format correction" in printed
    assert "### Conditions" in printed and "### Label study" in printed
    assert "### Claims checklist" in printed
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    found = images(page)
    assert set(found) == PAGE_IMAGES
    for alt, pixels in found.items():
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100, alt
        assert pixels[..., :3].std() > 0.05, f"{alt} is blank"
    rows = table_rows(page)
    assert len(rows) >= 8 and all(n > 0 for n in rows)
    claims = json.loads((out.parent / "claims.json").read_text())
    assert [c["id"] for c in claims] == [f"C{i}" for i in range(1, 10)]
    for claim in claims:
        assert set(claim) >= CLAIM_KEYS  # and each claim's own parts
        assert claim["verdict"] in ("reproduced", "contradicted", "inconclusive", "not run",
                                    "too small to judge")
    verdicts = {c["id"]: c["verdict"] for c in claims}
    assert verdicts["C6"] == "not run"  # no unguessable wrong-label run among these
    assert verdicts["C8"] == verdicts["C9"] == "not run"


def test_every_accuracy_and_gain_on_the_page_has_an_interval(full_report):
    paths, _ = full_report
    page = render_html(analyze(paths, window=2))
    tables = re.findall(r"<h[23]>([^<]*)</h[23]>\s*(?:<p[^>]*>[^<]*</p>\s*)?<div class=\"scroll\">"
                        r"<table>(.*?)</table>", page, re.S)
    checked = 0
    for title, body in tables:
        if not title.startswith(("Accuracy", "Where the gain", "Conditions", "Any two")):
            continue
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)[1:]:
            for cell in re.findall(r"<td[^>]*>([^<]*)</td>", row):
                if re.match(r"^[+-]?\d+\.\d", cell):  # a percentage or a gain
                    assert "[" in cell, (title, cell)
                    checked += 1
    assert checked > 100


def test_opening_sentences_come_from_the_numbers(full_report):
    paths, _ = full_report
    text = render_markdown(analyze(paths, window=2))
    opening = text.split("\n- ")[0]
    # entropy-only and random moved nothing beyond noise in these runs; format-only did
    noise = next(line for line in opening.splitlines() if line.startswith("Within noise"))
    assert "entropy-only" in noise and "random" in noise and "format-only" not in noise
    assert "the outcome reward adds" in opening and "skill change" in opening
    assert "Claims: C1" in opening


def test_markdown_numbers_match_the_hand_split(tmp_path):
    base = make_run(tmp_path, "b", mode=None, evals={0: {"s": "WUNC" * 3}})
    run = make_run(tmp_path, "o", evals={0: {"s": "WUNC" * 3}, 2: {"s": "CCCW" * 3}})
    text = render_markdown(analyze([run], base=base, classifier="generic"))
    # 25 → 75 (+50). Generic styles: W, C worked (boxed), U "The answer is 4" and N
    # "I am not sure." direct (never boxed). worked: π 0.5 → 1, φ 1, a 0.5 → 0.75; direct
    # π 0.5 → 0. Selection = 0.5·(2·0.5 + 2·0.75 + 0.75 + 0.5)/6 = 0.3125, skill =
    # 0.25·(2·0.5 + 2·1 + 1 + 0.5)/6 = 0.1875; format 0 (φ(worked) stays 1)
    assert "| o (outcome) | s | 12 | 25.0 [" in text
    row = next(line for line in text.splitlines() if line.startswith("| o (outcome) | s |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert [c.split(" [")[0] for c in cells[5:]] == ["+50.0", "+0.0", "+0.0", "+31.2", "+18.8"]


def test_missing_base_renders_everything_else(tmp_path):
    run = make_run(tmp_path, "t", train_acc=[1, 1, 1], evals={2: {"s": "CW"}, 4: {"s": "CC"}})
    analysis = analyze([run], window=2)
    page = render_html(analysis)
    assert "no base evaluation" in page
    assert {"training curves", "test accuracy over steps"} <= set(images(page))
    assert "No data for: waterfall" in page and "Claims checklist" in page


def test_run_without_metrics_still_gets_its_decomposition(tmp_path):
    run = make_run(tmp_path, "t", metrics=False, evals={0: {"s": "WW"}, 3: {"s": "CW"}})
    analysis = analyze([run])
    page = render_html(analysis)
    assert "no metrics.jsonl" in page
    assert analysis.comparisons[0].total.gain.value == pytest.approx(0.5)
    assert "No data for: training curves" in page
    assert "decomposition bars" in images(page)


def test_runs_on_different_suites_and_items_are_named(tmp_path):
    base = make_run(tmp_path, "b", mode=None, evals={0: {"math": "WW", "aime": "WWW"}})
    a = make_run(tmp_path, "a", evals={0: {"math": "WW"}, 2: {"math": "CC"}})
    c = make_run(tmp_path, "c", mode="format", evals={2: {"gsm": "CC", "aime": "CC"}},
                 ids={"aime": ["aime-0", "x-1"]})
    page = render_html(analyze([a, c], base=base))
    assert "aime: evaluated for b (step 0) but not for a" in page
    assert "gsm: evaluated for c but not for b (step 0); not compared" in page
    assert "compared on the 1 they share" in page
    assert "waterfall" in images(page)


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    run = make_run(tmp_path, "t", evals={0: {"s": "C"}})
    assert main(["report", str(run), "--threshold", "1.5"]) == 2
    assert "--threshold" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
