"""The decomposition, post-saturation and label study on fabricated run directories.

Every expected number is computed by hand from the outcome letters (see tests/rundirs.py).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rundirs import OUTCOMES, make_run, record

from rlvr.analysis import analyze, analyze_saturation, load_run
from rlvr.analysis.rundir import EvalRecord, EvalStep
from rlvr.analysis.saturation import saturation_step
from rlvr.analysis.transitions import (
    CLASSES,
    classify,
    decompose,
    item_transitions,
    pool,
    waterfall,
)
from rlvr.errors import UserError


def _records(suite: str, items: list[str]) -> tuple[EvalRecord, ...]:
    out = []
    for i, outcome in enumerate(items):
        for s, letter in enumerate(outcome):
            row = record(suite, f"{suite}-{i}", s, letter)
            out.append(EvalRecord(suite=suite, id=row["id"], sample=s, format=row["format"],
                                  correct_strict=row["correct_strict"],
                                  correct_lenient=row["correct_lenient"],
                                  finish_reason=row["finish_reason"]))
    return tuple(out)


def _step(step: int, **suites: list[str] | str) -> EvalStep:
    return EvalStep(step=step, records={k: _records(k, list(v)) for k, v in suites.items()},
                    summary=None)


@pytest.mark.parametrize("letter, expected", [
    ("C", "correct"), ("W", "formatted_wrong"), ("U", "format_failure"), ("N", "format_failure"),
    ("E", "format_failure"), ("R", "repetition"), ("T", "truncated"),
])
def test_classify_uses_the_grade_fields(letter, expected):
    (rec,) = _records("s", [letter])
    assert classify(rec) == expected


def test_lenient_right_but_unboxed_is_a_format_failure_not_a_success():
    (rec,) = _records("s", ["U"])
    assert rec.correct_lenient and not rec.correct_strict
    assert classify(rec) == "format_failure"


def test_greedy_split_by_hand():
    # base:    C  W  U  N  R  T  C
    # trained: C  C  C  C  C  W  W   -> reasoning 1, format 2, degeneration 1, losses 1
    rows, notes = decompose(_step(0, math="CWUNRTC"), _step(9, math="CCCCCWW"))
    (row,) = rows
    assert notes == []
    assert row.n_items == 7
    assert row.base_acc == pytest.approx(2 / 7)
    assert row.trained_acc == pytest.approx(5 / 7)
    assert row.format_correction == pytest.approx(2 / 7)
    assert row.reasoning_selection == pytest.approx(1 / 7)
    assert row.degeneration_fix == pytest.approx(1 / 7)
    assert row.losses == pytest.approx(1 / 7)
    assert row.transitions[("truncated", "formatted_wrong")] == 1
    assert row.transitions[("correct", "formatted_wrong")] == 1


def test_several_samples_weigh_each_pair_so_an_item_counts_once():
    # item 0: base CW, trained CC -> C→C 0.5, W→C 0.5 ; item 1: base WW, trained CW -> W→C 0.5
    rows, _ = decompose(_step(0, amc=["CW", "WW"]), _step(5, amc=["CC", "CW"]))
    (row,) = rows
    assert row.base_acc == pytest.approx(0.25)
    assert row.trained_acc == pytest.approx(0.75)
    assert row.reasoning_selection == pytest.approx(0.5)
    assert row.transitions[("formatted_wrong", "correct")] == pytest.approx(1.0)
    assert sum(row.transitions.values()) == pytest.approx(2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text("CWUNERT", min_size=1, max_size=3),
                          st.text("CWUNERT", min_size=1, max_size=3)), min_size=1, max_size=12))
def test_gain_identity_holds_for_any_outcomes(pairs):
    base, trained = _step(0, s=[b for b, _ in pairs]), _step(1, s=[t for _, t in pairs])
    (row,) = decompose(base, trained)[0]
    assert row.gain == pytest.approx(row.format_correction + row.reasoning_selection
                                     + row.degeneration_fix - row.losses)
    assert sum(row.transitions.values()) == pytest.approx(len(pairs))
    assert sum(row.class_rates("trained").values()) == pytest.approx(1.0)


def test_item_transitions_list_each_shared_item():
    rows = item_transitions(_step(0, a="WU", b="C"), _step(1, a="CU", c="C"))
    assert rows == [("a", "a-0", ("formatted_wrong",), ("correct",)),
                    ("a", "a-1", ("format_failure",), ("format_failure",))]


def test_pool_weighs_items_not_suites():
    rows, _ = decompose(_step(0, a="W", b="WWW"), _step(1, a="C", b="WWW"))
    total = pool(rows)
    assert total.n_items == 4
    assert total.trained_acc == pytest.approx(0.25)
    assert total.reasoning_selection == pytest.approx(0.25)


def test_different_suites_and_item_sets_are_reported_not_compared():
    base = _step(0, math="CW", aime="WW", amc="CC")
    trained = EvalStep(step=3, records={
        "math": _records("math", list("CCC")),  # one extra item: compared on the 2 shared
        "amc": (EvalRecord("amc", "other-0", 0, "boxed", True, True),),  # no shared id
        "minerva": _records("minerva", list("C")),
    }, summary=None)
    rows, notes = decompose(base, trained, run="r", base_name="b")
    assert [r.suite for r in rows] == ["math"]
    assert rows[0].n_items == 2
    text = "\n".join(notes)
    assert "aime: evaluated for b but not for r" in text
    assert "minerva: evaluated for r but not for b" in text
    assert "amc: b and r share no item ids" in text
    assert "compared on the 2 they share" in text


def test_waterfall_levels_residual_and_no_signal_mean():
    base = _step(0, s="WWWW")
    groups = {
        "entropy-only": [("e", _step(1, s="CWWW"))],
        "random": [("r", _step(1, s="WWWW"))],
        "format-only": [("f1", _step(1, s="CCWW")), ("f2", _step(1, s="CCCW"))],
        "outcome": [("o", _step(1, s="CCCC"))],
    }
    (row,), notes = waterfall(base, groups)
    assert notes == []
    assert row.base == 0
    assert row.no_signal == pytest.approx(0.125)  # mean of 0.25 and 0
    assert row.levels["format-only"] == pytest.approx(0.625)  # mean of the two format runs
    assert row.residual == pytest.approx(0.375)
    assert [label for label, _ in row.stages()] == [
        "base", "exploration / perturbation", "format-only", "outcome"]


def test_waterfall_without_format_run_says_so_and_has_no_residual():
    (row,), notes = waterfall(_step(0, s="WW"), {"outcome": [("o", _step(1, s="CW"))]})
    assert row.residual is None
    assert any("no entropy-only, random, format-only run" in n for n in notes)


@pytest.mark.parametrize("curve, threshold, window, expected", [
    ([0.9, 0.96, 0.97, 0.5, 0.96, 0.99, 1.0], 0.95, 3, 5),
    ([0.9, 0.96, 0.97, 0.5, 0.96, 0.99, 1.0], 0.95, 1, 2),
    ([0.9, 0.96, 0.97, 0.5, 0.96, 0.99], 0.95, 3, None),
    ([1.0, 1.0], 0.95, 3, None),
    ([0.5, 0.8, 0.8], 0.8, 2, 2),
])
def test_saturation_step_needs_the_whole_window(curve, threshold, window, expected):
    steps = [(i + 1, a) for i, a in enumerate(curve)]
    assert saturation_step(steps, threshold, window) == expected


def test_held_out_before_and_after_saturation(tmp_path):
    run = make_run(tmp_path, "o", train_acc=[0.2, 0.5, 1, 1, 1, 1, 1],
                   evals={0: {"s": "WWWW"}, 2: {"s": "CWWW"}, 4: {"s": "CCWW"},
                          7: {"s": "CCCW"}})
    sat = analyze_saturation(load_run(run), threshold=0.95, window=3)
    assert sat.step == 3 and sat.anchor == "anchor"
    (h,) = sat.heldout
    assert (h.before_step, h.before_acc) == (2, 0.25)
    assert (h.after_step, h.after_acc) == (7, 0.75)
    assert h.change == pytest.approx(0.5)
    assert h.best_after == pytest.approx(0.75)


def test_saturation_without_metrics_or_never_reached(tmp_path):
    no_metrics = make_run(tmp_path, "a", metrics=False, evals={0: {"s": "W"}})
    assert "no metrics.jsonl" in analyze_saturation(load_run(no_metrics)).note
    never = make_run(tmp_path, "b", train_acc=[0.1, 0.2], evals={0: {"s": "W"}})
    result = analyze_saturation(load_run(never))
    assert result.step is None and "never stayed" in result.note


def _study(tmp_path):
    base = {"s": "WWWWUUUU"}
    specs = [
        ("outcome", "outcome", None, "CCCCCCCW"),
        ("fmt", "format", None, "WWWWCCCC"),
        ("ent", "none", None, "CWWWUUUU"),
        ("rnd", "random", None, "WWWWUUUU"),
        ("guess", "wrong_label", "guessable", "CCCCCCWW"),
        ("unguess", "wrong_label", "unguessable", "CWWWCUUU"),
    ]
    paths = [make_run(tmp_path, name, mode=mode, wrong_label_kind=kind,
                      label={"guessable": "12.8", "unguessable": "-3"}.get(kind),
                      evals={0: base, 5: {"s": final}})
             for name, mode, kind, final in specs]
    return paths


def test_label_study_reads_roles_from_config(tmp_path):
    analysis = analyze(_study(tmp_path), window=2)
    rows = {row.condition: row for row in analysis.labels}
    assert list(rows) == ["correct label", "guessable wrong label", "unguessable wrong label",
                          "entropy-only (no reward)", "random reward"]
    assert rows["correct label"].accuracy["s"] == pytest.approx(7 / 8)
    assert rows["guessable wrong label"].labels == ("12.8",)
    assert rows["guessable wrong label"].gain["s"] == pytest.approx(6 / 8)
    assert rows["unguessable wrong label"].gain["s"] == pytest.approx(2 / 8)
    assert rows["random reward"].gain["s"] == 0
    assert rows["correct label"].saturation == (3,)  # train acc 0.5, 0.75, 1, 1


def test_analyze_end_to_end_waterfall_and_decomposition(tmp_path):
    analysis = analyze(_study(tmp_path), window=2)
    assert analysis.base_label == "step 0 of outcome"
    (row,) = analysis.waterfall
    assert row.base == 0
    assert row.levels["format-only"] == pytest.approx(0.5)
    assert row.levels["outcome"] == pytest.approx(7 / 8)
    assert row.residual == pytest.approx(3 / 8)
    by_run = {c.run: c.suites[0] for c in analysis.comparisons}
    assert by_run["fmt"].format_correction == pytest.approx(0.5)
    assert by_run["fmt"].reasoning_selection == 0
    assert by_run["outcome"].reasoning_selection == pytest.approx(0.5)
    assert by_run["outcome"].format_correction == pytest.approx(3 / 8)
    assert analysis.comparisons[0].run == "outcome"  # tables list outcome first


def test_base_choice_explicit_then_eval_only_then_step0(tmp_path):
    trained = make_run(tmp_path, "t", evals={0: {"s": "WW"}, 3: {"s": "CC"}})
    other = make_run(tmp_path, "evalbase", mode=None, evals={0: {"s": "CW"}})
    explicit = analyze([trained], base=other)
    assert explicit.base_label.startswith("evalbase")
    assert explicit.comparisons[0].suites[0].base_acc == 0.5
    implicit = analyze([trained, other])
    assert implicit.base_label == "evalbase"
    assert [c.run for c in implicit.comparisons] == ["t"]
    own = analyze([trained])
    assert own.base_label == "step 0 of t"
    assert own.comparisons[0].suites[0].base_acc == 0


def test_missing_base_is_a_note_and_the_rest_still_computes(tmp_path):
    run = make_run(tmp_path, "t", train_acc=[1, 1, 1], evals={4: {"s": "CC"}})
    analysis = analyze([run], window=2)
    assert analysis.comparisons == () and analysis.waterfall == ()
    assert any("no base evaluation" in n for n in analysis.notes)
    assert analysis.saturations[0].step == 1


def test_base_on_another_model_is_flagged(tmp_path):
    run = make_run(tmp_path, "t", model="organism-a", evals={3: {"s": "CC"}})
    base = make_run(tmp_path, "b", mode=None, model="organism-b", evals={0: {"s": "WW"}})
    analysis = analyze([run], base=base)
    assert analysis.comparisons
    assert any("started from organism-a" in n for n in analysis.notes)


def test_loader_tolerates_missing_and_malformed_pieces(tmp_path):
    run = make_run(tmp_path, "t", metrics=False, evals={0: {"s": "CW"}, 2: {"s": "CC"}})
    with open(run / "eval" / "step-2" / "s.jsonl", "a") as f:
        f.write(json.dumps({**record("s", "s-9", 0, "C"), "format": "weird"}) + "\n")
        f.write('{"torn": \n')  # a killed writer's last line
    (run / "eval" / "step-0" / "summary.json").unlink()
    loaded = load_run(run)
    assert len(loaded.evals[2].records["s"]) == 2
    assert loaded.evals[0].summary is None and loaded.evals[0].accuracy("s") == 0.5
    text = " ".join(loaded.problems)
    assert "no metrics.jsonl" in text and "without id, a known format" in text


def test_summary_only_step_gives_accuracy_for_curves(tmp_path):
    run = make_run(tmp_path, "t", evals={0: {"s": "CW"}})
    (run / "eval" / "step-0" / "s.jsonl").unlink()
    loaded = load_run(run)
    assert loaded.evals[0].records == {}
    assert loaded.evals[0].accuracy("s") == 0.5


def test_not_a_run_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        load_run(tmp_path / "empty")


def test_wrong_label_without_kind_is_left_out_with_a_note(tmp_path):
    paths = [make_run(tmp_path, "o", evals={0: {"s": "W"}, 1: {"s": "C"}}),
             make_run(tmp_path, "w", mode="wrong_label", evals={0: {"s": "W"}, 1: {"s": "W"}}),
             make_run(tmp_path, "e", mode="none", evals={0: {"s": "W"}, 1: {"s": "W"}})]
    analysis = analyze(paths)
    assert [r.condition for r in analysis.labels] == ["correct label",
                                                      "entropy-only (no reward)"]
    assert any("without reward.wrong_label_kind" in n for n in analysis.notes)


def test_outcome_letters_cover_every_format():
    from rlvr.analysis.rundir import FORMATS
    assert {fmt for fmt, *_ in OUTCOMES.values()} == set(FORMATS)
    assert set(CLASSES) == {classify(r) for r in _records("s", list(OUTCOMES))}


def test_greedy_and_sampled_records_are_read_separately(tmp_path):
    run = make_run(tmp_path, "t", evals={0: {"s": "WW"}, 2: {"s": "CW"}})
    with open(run / "eval" / "step-2" / "s.jsonl", "a") as f:  # 2 samples per item: all right
        for item in ("s-0", "s-1"):
            for sample in (1, 2):
                f.write(json.dumps(record("s", item, sample, "C")) + "\n")
    auto = load_run(run).evals[2]
    assert auto.accuracy("s") == 1.0  # auto: avg@k is the headline where samples exist
    assert auto.decoding == "sampled" and len(auto.greedy["s"]) == 2  # greedy kept beside
    assert load_run(run, "greedy").evals[2].accuracy("s") == 0.5
    sampled = load_run(run, "sampled")
    assert sampled.evals[2].accuracy("s") == 1.0
    assert "eval/step-0/s.jsonl: no sampled records" in sampled.problems
    analysis = analyze([run], decoding="sampled")
    assert analysis.comparisons == ()  # step 0 has no samples: nothing to compare with
    with pytest.raises(UserError, match="unknown decoding"):
        load_run(run, "beam")


def test_base_listed_again_among_the_runs_is_not_compared_with_itself(tmp_path):
    trained = make_run(tmp_path, "t", evals={0: {"s": "WW"}, 3: {"s": "CC"}})
    base = make_run(tmp_path, "b", mode=None, evals={0: {"s": "CW"}})
    analysis = analyze([trained, base], base=base)
    assert [c.run for c in analysis.comparisons] == ["t"]
