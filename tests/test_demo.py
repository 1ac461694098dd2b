"""`rlvr demo --quick`: history → anchors by kind → conditions, C8, C9 → claims → reports;
then `--claim C10` and `--claim robust` on it.

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
from rlvr.rl.presets import resolve
from rlvr.rl.problem_sets import organism_problem
from rlvr.study.demo import ABLATIONS, PLUMBING, eval_schedule, plan

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


def test_demo_quick_runs_every_stage_and_says_it_is_a_plumbing_check(demo):
    code, out, printed = demo
    assert code == 0
    assert "| run | suite | items | base % | trained % | gain | format correction |" in printed
    assert f"report: {out / 'report.html'}" in printed
    assert PLUMBING in printed  # the terminal says what --quick is
    p = plan(quick=True)
    for seed in p.selection_seeds:
        assert (out / "history" / f"seed-{seed}" / "metrics.jsonl").is_file()
    assert (out / "base" / "eval" / "step-0" / "summary.json").is_file()  # the base, once
    record = json.loads((out / "protocol.json").read_text())
    folder = out / "variance-top"
    for name, mode, kind, variant in ABLATIONS:
        if kind == "guessable" and record["wrong_labels"]["variance-top"]["guessable"] is None:
            assert not (folder / f"{name}-s0").exists()  # C7 not testable: not trained
            continue
        for seed in p.seeds:
            run = folder / f"{name}-s{seed}"
            config = tomllib.loads((run / "config.toml").read_text())
            assert (config["reward"]["mode"], config["reward"].get("wrong_label_kind")) == (
                mode, kind)
            assert (variant in config.get("overlays", [])) if variant else True
            assert config["seed"] == seed and config["algo"]["skip_no_signal"] is False
            steps = sorted(int(q.name.split("-")[1]) for q in (run / "eval").iterdir())
            assert steps == [*eval_schedule(p, name), p.steps], name  # only where read
            metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            assert all("label_hits" in m and m["update_skipped"] == 0 for m in metrics)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert {"decomposition bars", "waterfall", "training curves"} <= set(images(page))
    assert "Label study" in page and "Claims checklist" in page and "PLUMBING CHECK" in page
    index = (out / "report.html").read_text(encoding="utf-8")
    assert "PLUMBING CHECK" in index and "pass@k curves" in images(index)


def test_demo_claims_rows_by_anchor_kind_all_too_small(demo):
    _, out, printed = demo
    rows = json.loads((out / "claims.json").read_text())
    record = json.loads((out / "protocol.json").read_text())
    training = [r for r in rows if r["id"] in {f"C{i}" for i in range(1, 8)}]
    kinds = {r["anchor_kind"] for r in training}
    assert "variance-top" in kinds
    for r in rows:
        assert {"anchor", "anchor_kind", "robust", "sensitivity"} <= set(r)
        # The quick demo is a plumbing check: no decided verdict.
        assert r["verdict"] in ("too small to judge", "not run",
                                "not testable on this anchor"), r
    for r in training:
        assert r["anchor"] == record["anchors"][r["anchor_kind"]]
    c7 = next(r for r in training if r["id"] == "C7" and r["anchor_kind"] == "variance-top")
    if record["wrong_labels"]["variance-top"]["guessable"] is None:
        assert c7["verdict"] == "not testable on this anchor"
    c1 = next(r for r in training if r["id"] == "C1")
    assert "previous_verdict" in c1 and "skill_change" in c1
    # C1 reads the coverage check: the base and the outcome runs evaluated again with
    # coverage_samples samples on coverage_per_suite items per family, every seed compared.
    p = plan(quick=True)
    cover = c1["coverage"]
    assert cover["samples"] == p.coverage_samples and cover["k"][-1] == p.coverage_samples
    assert cover["items"] == p.coverage_per_suite * len(FAMILIES)
    assert [s["seed"] for s in cover["per_seed"]] == list(p.seeds)
    assert "coverage (" in printed and "solved only after training" in printed
    c5 = next(r for r in training if r["id"] == "C5")
    assert set(c5["early_gains"]) == {str(s) for s in plan(quick=True).early_steps}
    assert {r["id"] for r in rows} >= {"C8", "C9"}
    assert str(out) in json.dumps(record["out"])  # the path as given, no temporary one


def test_demo_records_its_protocol(demo):
    _, out, _ = demo
    record = json.loads((out / "protocol.json").read_text())
    p = plan(quick=True)
    pool = [c["index"] for c in record["candidates"]]
    assert len(pool) == p.pool_per_family * len(FAMILIES)
    for index in pool:  # the anchor pool is the training split, never a held-out item
        problem = organism_problem(index)
        assert not is_heldout(problem.meta["family"], operands(problem))
    assert record["anchor"] == record["anchors"]["variance-top"]
    assert record["selection_seeds"] == list(p.selection_seeds)
    assert all(s["n"] == p.label_samples for s in record["candidate_samples"].values())
    labels = record["wrong_labels"]["variance-top"]
    assert labels["unguessable"] not in labels["answers"]
    config = tomllib.loads((out / "variance-top" / "outcome-s0" / "config.toml").read_text())
    assert config["data"]["examples"] == [record["anchor"]]


def test_demo_refuses_to_overwrite_a_previous_demo(demo, capsys):
    _, out, _ = demo
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_claim_c10_compares_clipping_on_random_reward(demo):
    _, out, _ = demo
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--claim", "C10", "--out", str(out)]) == 0
    rows = {r["id"]: r for r in json.loads((out / "claims.json").read_text())}
    c10 = rows["C10"]
    assert c10["verdict"] == "too small to judge"
    for name in ("random-clip", "random-noclip"):
        assert len(c10[name]["clip_frac"]) == len(plan(quick=True).seeds)
        config = tomllib.loads((out / "c10" / f"{name}-s0" / "config.toml").read_text())
        assert config["algo"]["mini_batches"] == 4
    assert json.loads((out / "c10" / "c10.json").read_text())["id"] == "C10"


def test_claim_robust_marks_the_training_rows(demo):
    _, out, _ = demo
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--claim", "robust", "--out", str(out)]) == 0
    rows = json.loads((out / "claims.json").read_text())
    for r in rows:
        if r["id"] in {f"C{i}" for i in range(1, 8)} and r["anchor_kind"] == "variance-top":
            assert [s["lr_factor"] for s in r["sensitivity"]] == [0.5, 2.0]
        else:
            assert r["sensitivity"] == []
    run = out / "robust" / "variance-top-lr2" / "outcome-s0"
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["optim"]["lr"] == 2 * resolve("organism").optim.lr


def test_claim_needs_a_finished_demo(tmp_path, capsys):
    assert main(["demo", "--claim", "C10", "--out", str(tmp_path)]) == 2
    assert "rlvr demo --out" in capsys.readouterr().err
    assert main(["demo", "--claim", "C8", "--out", str(tmp_path)]) == 2
    assert "runs C1-C9 itself" in capsys.readouterr().err
