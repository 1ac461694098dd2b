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
from rlvr.organism.tasks import FAMILIES, is_heldout, operands
from rlvr.rl.problem_sets import organism_problem
from rlvr.study.demo import ABLATIONS, plan

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
    p = plan(quick=True)
    for seed in p.selection_seeds:
        assert (out / "history" / f"seed-{seed}" / "metrics.jsonl").is_file()
    assert (out / "base" / "eval" / "step-0" / "summary.json").is_file()  # the base, once
    for name, mode, kind in ABLATIONS:
        for seed in p.seeds:
            run = out / f"{name}-s{seed}"
            config = tomllib.loads((run / "config.toml").read_text())
            assert (config["reward"]["mode"], config["reward"].get("wrong_label_kind")) == (
                mode, kind)
            assert config["seed"] == seed
            steps = sorted(int(q.name.split("-")[1]) for q in (run / "eval").iterdir())
            assert steps == [*p.eval_steps, p.steps], name  # the base is evaluated once
            metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            assert all("label_hits" in m and "update_skipped" in m for m in metrics)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert {"decomposition bars", "waterfall", "training curves"} <= set(images(page))
    assert "Label study" in page and "Claims checklist" in page
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims] == [f"C{i}" for i in range(1, 10)]
    assert {c["id"] for c in claims if c["verdict"] != "not run"} >= {"C1", "C4", "C6", "C7"}


def test_demo_records_its_protocol(demo):
    _, out, _ = demo
    record = json.loads((out / "protocol.json").read_text())
    p = plan(quick=True)
    pool = [c["index"] for c in record["candidates"]]
    assert len(pool) == p.pool_per_family * len(FAMILIES)
    for index in pool:  # the anchor pool is the training split, never a held-out item
        problem = organism_problem(index)
        assert not is_heldout(problem.meta["family"], operands(problem))
    assert record["anchor"] == pool[0] and record["selection_seeds"] == list(p.selection_seeds)
    labels = record["wrong_labels"]
    assert labels["unguessable"] not in labels["answers"]
    for name, _, kind in ABLATIONS:
        config = tomllib.loads((out / f"{name}-s0" / "config.toml").read_text())
        assert config["data"]["examples"] == [record["anchor"]]  # one anchor for every run
        if kind and labels[kind] is not None:
            assert config["reward"]["label"] == labels[kind]


def test_demo_writes_the_nine_claims_and_names_the_c8_c9_commands(demo):
    _, out, _ = demo
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())}
    assert sorted(claims) == [f"C{i}" for i in range(1, 10)]
    for cid in ("C8", "C9"):  # the demo does not run them: not run, with the command
        assert claims[cid]["verdict"] == "not run"
        assert f"rlvr demo --claim {cid} --out {out}" in claims[cid]["measure"]


def test_demo_refuses_to_overwrite_a_previous_demo(demo, capsys):
    _, out, _ = demo
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def _run_claim(out, claim: str) -> tuple[dict, dict]:
    """`rlvr demo --claim CLAIM --out OUT`: its own result file and claims.json by id."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--claim", claim, "--out", str(out)]) == 0
    result = json.loads((out / claim.lower() / f"{claim.lower()}.json").read_text())
    return result, {c["id"]: c for c in json.loads((out / "claims.json").read_text())}


def test_claim_c9_extends_a_finished_demo(demo):
    _, out, _ = demo
    result, claims = _run_claim(out, "C9")
    types = result["anchor_types"]
    assert {"top-variance", "hardest"} <= set(types)
    record = json.loads((out / "protocol.json").read_text())
    assert types["top-variance"]["anchor"] == record["anchor"]
    assert len({row["anchor"] for row in types.values()}) == len(types)  # distinct anchors
    for row in types.values():
        assert len(row["gains"]) == len(plan(quick=True).seeds)
    c9 = claims["C9"]
    assert set(c9) == {"id", "claim", "measure", "rule", "value", "ci", "seeds", "items",
                       "verdict"}
    assert c9["verdict"] in ("reproduced", "contradicted", "inconclusive")
    assert c9["seeds"] == len(plan(quick=True).seeds) and c9["items"] == result["items"]


def test_claim_c8_derives_a_weaker_organism_and_extends_the_demo(demo):
    _, out, _ = demo
    result, claims = _run_claim(out, "C8")
    levels = result["levels"]
    assert list(levels)[0] == "demo model" and len(levels) >= 2
    weak = next(name for name in levels if name != "demo model")
    assert (out / "c8" / weak / "derived.toml").is_file()
    for row in levels.values():
        assert len(row["gains"]) == len(plan(quick=True).seeds)
        # The quick demo's 24-token budget cuts most working chains: skill may be unmeasured.
        skill = row["working_skill"]
        assert (skill is None) == (row["working_samples"] == 0)
        assert skill is None or 0.0 <= skill <= 1.0
    assert claims["C8"]["verdict"] in ("reproduced", "contradicted", "inconclusive")


def test_claim_needs_a_finished_demo(tmp_path, capsys):
    assert main(["demo", "--claim", "C9", "--out", str(tmp_path)]) == 2
    assert "rlvr demo --out" in capsys.readouterr().err
    assert main(["demo", "--claim", "C8", "--out", str(tmp_path)]) == 2
