"""`rlvr decompose`: the JSON schema of #13, run directories and eval folders, old greedy-only
runs, and bad input as one-line errors."""

from __future__ import annotations

import json

import pytest
from rundirs import make_run

from rlvr.cli import main
from rlvr.decomposition.gain import TERMS

# Five copies of a small pattern: 30 items, enough to compare (rlvr.decomposition.comparable).
BASE = {"math": ["CW", "WW", "UC", "RW"] * 5, "amc": ["WW", "CC"] * 5}
TRAINED = {"math": ["CC", "CW", "CC", "WW"] * 5, "amc": ["CW", "CC"] * 5}


def _json(capsys, *args: str) -> dict:
    assert main(["decompose", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_issue_keys_and_adds_up(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED})
    data = _json(capsys, str(run / "eval" / "step-0"), str(run / "eval" / "step-3"))
    assert set(data) >= {"all", "suites", "n_items", "k", "overlap", "compared"}
    assert data["n_items"] == 30 and data["k"] == 2
    assert data["overlap"]["math"] == {"base": 20, "trained": 20, "shared": 20}
    assert data["compared"] == "sampled records (avg@k) on both sides"
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
    assert styles["degenerate"]["base"]["pi"] == pytest.approx(1 / 12)  # the R samples
    assert styles["degenerate"]["trained"]["pi"] == 0


def test_run_directory_with_step_equals_the_eval_folders(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: BASE, 3: TRAINED, 5: BASE})
    by_folder = _json(capsys, str(run / "eval" / "step-0"), str(run / "eval" / "step-3"))
    by_run = _json(capsys, str(run), str(run), "--step", "3")
    assert by_run == by_folder
    last = _json(capsys, str(run), str(run))  # default: the last step, here equal to the base
    assert last["all"]["gain"]["value"] == 0


def test_old_greedy_only_runs_load_and_get_item_intervals(tmp_path, capsys):
    run = make_run(tmp_path, "old", evals={0: {"s": "WWWWWWCCCC" * 2}, 9: {"s": "C" * 20}})
    data = _json(capsys, str(run), str(run), "--step", "9")
    assert data["k"] == 1 and data["n_items"] == 20
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


def test_too_few_shared_items_are_refused_unless_allowed(tmp_path, capsys):
    """Issue 23 item 3: 1 shared item of 60 was compared and printed zero-width intervals."""
    ids = {0: [f"a{i}" for i in range(60)], 3: ["a0", *(f"b{i}" for i in range(59))]}
    run = tmp_path / "r"
    from rundirs import write_eval_step

    for step, names in ids.items():
        write_eval_step(run, step, {"s": ["CW"] * 60}, ids={"s": names})
    assert main(["decompose", str(run / "eval" / "step-0"), str(run / "eval" / "step-3")]) == 2
    err = capsys.readouterr().err
    assert "share 1 item(s)" in err and "at least 10" in err and err.count("\n") == 1
    data = _json(capsys, str(run / "eval" / "step-0"), str(run / "eval" / "step-3"),
                 "--allow-partial")
    assert data["n_items"] == 1 and data["all"]["gain"]["ci"] is None  # no interval from 1 item
    half = tmp_path / "h"  # 25 shared of 60: enough items, under half the smaller side
    write_eval_step(half, 0, {"s": ["CW"] * 60}, ids={"s": [f"a{i}" for i in range(60)]})
    write_eval_step(half, 1, {"s": ["CW"] * 60},
                    ids={"s": [*(f"a{i}" for i in range(25)), *(f"b{i}" for i in range(35))]})
    assert main(["decompose", str(half / "eval" / "step-0"), str(half / "eval" / "step-1")]) == 2
    assert "under 50% of the smaller side" in capsys.readouterr().err


def _eval_run(root, name, temperature, samples="CW"):
    from rundirs import write_eval_step

    from rlvr.rundir.write import write_config_toml

    run = root / name
    write_eval_step(run, 0, {"s": [samples] * 20})
    write_config_toml(run / "config.toml", {
        "kind": "eval", "model": {"path": "m"},
        "eval": {"template": "raw", "samples": len(samples), "temperature": temperature,
                 "top_p": 1.0, "max_new_tokens": 64}}, seed=0)
    summary = run / "eval" / "step-0" / "summary.json"
    data = json.loads(summary.read_text())
    data["suites"]["s"]["temperature"] = temperature
    summary.write_text(json.dumps(data))
    return run / "eval" / "step-0"


def test_different_decoding_is_refused_unless_allowed(tmp_path, capsys):
    base, hot = _eval_run(tmp_path, "a", 0.6), _eval_run(tmp_path, "b", 1.0)
    same = _eval_run(tmp_path, "c", 0.6)
    assert main(["decompose", str(base), str(hot)]) == 2
    err = capsys.readouterr().err
    assert "temperature 0.6 (base) vs 1.0 (trained)" in err and err.count("\n") == 1
    assert main(["decompose", str(base), str(hot), "--allow-mismatch"]) == 0
    assert "decoding differs (allowed)" in capsys.readouterr().err
    assert _json(capsys, str(base), str(same))["decoding_differences"] == []


def test_greedy_against_sampled_is_said_plainly(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: {"s": "C" * 20}, 3: {"s": ["CW"] * 20}})
    assert main(["decompose", str(run), str(run), "--step", "3"]) == 2
    err = capsys.readouterr().err
    assert "greedy on one side, sampled on the other" in err
