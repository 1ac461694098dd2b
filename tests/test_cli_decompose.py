"""`rlvr decompose`: the JSON schema of #13, run directories and eval folders, old greedy-only
runs, and bad input as one-line errors."""

from __future__ import annotations

import json

import pytest
from rundirs import make_run

from rlvr.cli import main
from rlvr.decomposition.gain import TERMS

BASE = {"math": ["CW", "WW", "UC", "RW"], "amc": ["WW", "CC"]}
TRAINED = {"math": ["CC", "CW", "CC", "WW"], "amc": ["CW", "CC"]}


def _json(capsys, *args: str) -> dict:
    assert main(["decompose", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_issue_keys_and_adds_up(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED})
    data = _json(capsys, str(run / "eval" / "step-0"), str(run / "eval" / "step-3"))
    assert set(data) == {"all", "suites", "n_items", "k"}
    assert data["n_items"] == 6 and data["k"] == 2
    assert set(data["suites"]) == {"math", "amc"}
    for terms in (data["all"], *data["suites"].values()):
        assert set(terms) == {*TERMS, "styles"}
        for term in TERMS:
            lo, hi = terms[term]["ci"]
            assert lo <= terms[term]["value"] <= hi
        parts = sum(terms[t]["value"] for t in TERMS[1:])
        assert parts == pytest.approx(terms["gain"]["value"])
    # math: 2/8 → 5/8 right (+37.5 points); amc: 2/4 → 3/4 (+25); all: 4 and 2 items
    assert data["suites"]["math"]["gain"]["value"] == pytest.approx(37.5)
    assert data["suites"]["amc"]["gain"]["value"] == pytest.approx(25.0)
    assert data["all"]["gain"]["value"] == pytest.approx((4 * 37.5 + 2 * 25) / 6)
    styles = data["all"]["styles"]
    assert styles["degenerate"]["base"]["pi"] == pytest.approx(1 / 12)  # the R sample
    assert styles["degenerate"]["trained"]["pi"] == 0


def test_run_directory_with_step_equals_the_eval_folders(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED, 5: BASE})
    by_folder = _json(capsys, str(run / "eval" / "step-0"), str(run / "eval" / "step-3"))
    by_run = _json(capsys, str(run), str(run), "--step", "3")
    assert by_run == by_folder
    last = _json(capsys, str(run), str(run))  # default: the last step, here equal to the base
    assert last["all"]["gain"]["value"] == 0


def test_old_greedy_only_runs_load_and_get_item_intervals(tmp_path, capsys):
    run = make_run(tmp_path, "old", evals={0: {"s": "WWWWWWCCCC"}, 9: {"s": "CCCCCCCCCC"}})
    data = _json(capsys, str(run), str(run), "--step", "9")
    assert data["k"] == 1 and data["n_items"] == 10
    gain = data["all"]["gain"]
    assert gain["value"] == pytest.approx(60.0) and gain["ci"][0] > 0


def test_default_classifier_follows_the_runs_model(tmp_path, capsys):
    organism = make_run(tmp_path, "org", model="", evals={0: BASE, 3: TRAINED})
    other = make_run(tmp_path, "llm", model="Qwen/Qwen2.5-Math-1.5B", evals={0: BASE, 3: TRAINED})
    assert set(_json(capsys, str(organism), str(organism))["all"]["styles"]) >= {"work", "guess"}
    assert set(_json(capsys, str(other), str(other))["all"]["styles"]) >= {"worked", "direct"}
    forced = _json(capsys, str(organism), str(organism), "--classifier", "generic")
    assert "worked" in forced["all"]["styles"]


def test_text_output_marks_gains_within_noise(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED})
    assert main(["decompose", str(run), str(run)]) == 0
    out = capsys.readouterr().out
    assert "skill change" in out and "within noise" in out and "items, k = 2" in out


@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing", "{tmp}/missing"], "does not exist"),
    (["{run}", "{run}", "--step", "7"], "no evaluation at step 7"),
    (["{run}", "{run}", "--classifier", "bert"], "unknown --classifier"),
    (["{run}/eval/step-0", "{run}/eval/step-0"], "the same evaluation"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED})
    argv = [a.format(tmp=tmp_path, run=run) for a in args]
    assert main(["decompose", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
