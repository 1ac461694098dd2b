"""`rlvr demo --quick`: history → anchor → six ablations in parallel → evaluation → report.

Uses the shipped organism; where the package does not ship it yet, a tiny random Llama with a
character tokenizer stands in (the plumbing is the same, the numbers are not the point here).
"""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from pathlib import Path

import pytest
from test_report import images

from rlvr.cli import main
from rlvr.demo import ABLATIONS
from rlvr.selection import load_history, rank

pytestmark = pytest.mark.slow


def _model_args(tmp_path: Path) -> list[str]:
    from rlvr.organism import default_path

    if (default_path() / "config.json").is_file():
        return []
    from _tiny_lm import make_tiny_lm

    return ["--model", str(make_tiny_lm(tmp_path / "tiny-lm"))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["demo", "--quick", "--out", str(out), *_model_args(tmp)])
    return code, out, printed.getvalue()


def test_demo_quick_runs_every_stage_and_writes_the_report(demo):
    code, out, printed = demo
    assert code == 0
    assert "| run | suite | items | base % | trained % | gain | format correction |" in printed
    assert f"report: {out / 'report.html'}" in printed
    assert (out / "history" / "metrics.jsonl").is_file()
    modes = {}
    for name, mode, kind in ABLATIONS:
        config = tomllib.loads((out / name / "config.toml").read_text())
        modes[name] = (config["reward"]["mode"], config["reward"].get("wrong_label_kind"))
        assert (out / name / "metrics.jsonl").is_file()
        steps = sorted(int(p.name.split("-")[1]) for p in (out / name / "eval").iterdir())
        assert steps[0] == 0 and steps[-1] == config["steps"], name  # base and trained
        assert modes[name] == (mode, kind)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert {"decomposition bars", "waterfall", "training curves"} <= set(images(page))
    assert "Label study" in page and "Claims checklist" in page
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims] == [f"C{i}" for i in range(1, 10)]
    assert {c["id"] for c in claims if c["verdict"] != "not run"} >= {"C1", "C4", "C6", "C7"}


def test_demo_trains_on_the_top_variance_anchor(demo):
    _, out, _ = demo
    top = rank(load_history(out / "history"), score="variance")[0].index
    config = tomllib.loads((out / "outcome" / "config.toml").read_text())
    assert config["data"]["examples"] == [top]


def test_demo_refuses_to_overwrite_a_previous_demo(demo, capsys):
    _, out, _ = demo
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
