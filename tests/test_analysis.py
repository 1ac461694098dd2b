"""The study (base choice, conditions, contrasts), post-saturation and label study on
fabricated run directories. The decomposition itself: tests/test_decomposition.py.

Every expected number is computed by hand from the outcome letters (see tests/rundirs.py).
"""

from __future__ import annotations

import json

import pytest
from rundirs import OUTCOMES, make_run, record

from rlvr.analysis import analyze, analyze_saturation, load_run
from rlvr.analysis.saturation import saturation_step
from rlvr.errors import UserError


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
    assert rows["correct label"].accuracy["s"].value == pytest.approx(7 / 8)
    assert rows["guessable wrong label"].labels == ("12.8",)
    assert rows["guessable wrong label"].gain["s"].value == pytest.approx(6 / 8)
    assert rows["unguessable wrong label"].gain["s"].value == pytest.approx(2 / 8)
    assert rows["random reward"].gain["s"].value == 0
    assert rows["correct label"].saturation == (3,)  # train acc 0.5, 0.75, 1, 1


def test_analyze_end_to_end_conditions_contrasts_and_decomposition(tmp_path):
    analysis = analyze(_study(tmp_path), window=2)
    assert analysis.base_label == "step 0 of outcome"
    conditions = {c.role: c for c in analysis.conditions}
    assert conditions["format-only"].accuracy.value == pytest.approx(0.5)
    assert conditions["outcome"].gain.value == pytest.approx(7 / 8)
    # nothing moved; 8 items are under the interval minimum, so a point value only
    assert conditions["random"].gain.value == 0 and not conditions["random"].gain.has_interval
    by_pair = {(c.left, c.right): c for c in analysis.contrasts}
    residual = by_pair[("outcome", "format-only")].difference
    assert residual.value == pytest.approx(3 / 8) and residual.n == 8
    by_run = {c.run: c.total for c in analysis.comparisons}
    # base WWWWUUUU → fmt WWWWCCCC. To the generic classifier "The answer is 4" (U) is a
    # direct answer, C and W ("2+2 is \\boxed{.}") worked: π(worked) 0.5 → 1, a(worked)
    # 0 → 0.5, φ(worked) 1. Shapley: selection 0.5·(2·0.5 + 0.5)/6 = 0.125, skill
    # 0.5·(2·0.5 + 2·1 + 0.5 + 1)/6 = 0.375 (direct is never boxed: its π change counts 0)
    fmt = by_run["fmt"]
    assert fmt.terms["gain"].value == pytest.approx(0.5)
    assert fmt.terms["mode_selection"].value == pytest.approx(0.125)
    assert fmt.terms["skill_change"].value == pytest.approx(0.375)
    shares = {s.style: (s.base[0], s.trained[0]) for s in fmt.styles}
    assert shares["direct"] == (0.5, 0.0) and shares["worked"] == (0.5, 1.0)
    assert analysis.comparisons[0].run == "outcome"  # tables list outcome first


def test_peak_step_and_greedy_beside_sampled(tmp_path):
    run = make_run(tmp_path, "o", evals={0: {"s": ["WW", "WW"]}, 2: {"s": ["CC", "CW"]},
                                          4: {"s": ["CW", "WW"]}})
    (c,) = analyze([run]).comparisons
    assert c.decomposition.decoding == "sampled" and c.decomposition.k == 2
    assert (c.peak_step, c.peak.value) == (2, 0.75)
    assert c.total.trained_acc.value == 0.25 and c.greedy is None


def test_base_choice_explicit_then_eval_only_then_step0(tmp_path):
    trained = make_run(tmp_path, "t", evals={0: {"s": "WW"}, 3: {"s": "CC"}})
    other = make_run(tmp_path, "evalbase", mode=None, evals={0: {"s": "CW"}})
    explicit = analyze([trained], base=other)
    assert explicit.base_label.startswith("evalbase")
    assert explicit.comparisons[0].total.base_acc.value == 0.5
    implicit = analyze([trained, other])
    assert implicit.base_label == "evalbase"
    assert [c.run for c in implicit.comparisons] == ["t"]
    own = analyze([trained])
    assert own.base_label == "step 0 of t"
    assert own.comparisons[0].total.base_acc.value == 0


def test_missing_base_is_a_note_and_the_rest_still_computes(tmp_path):
    run = make_run(tmp_path, "t", train_acc=[1, 1, 1], evals={4: {"s": "CC"}})
    analysis = analyze([run], window=2)
    assert analysis.comparisons == () and analysis.conditions == ()
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
    from rlvr.rundir.read import FORMATS
    assert {fmt for fmt, *_ in OUTCOMES.values()} == set(FORMATS)


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


def test_an_evaluation_of_a_trained_checkpoint_is_never_the_default_base(tmp_path):
    """Issue 23 item 3: `rlvr report RUN EVAL_FOLDER` took an eval-only folder of a trained
    checkpoint as the base ("outcome −7.0, C1 contradicted")."""
    run = make_run(tmp_path, "t", evals={0: {"s": "WWWWWCCCCC"}, 5: {"s": "CCCCCCCCCW"}})
    ckpt = make_run(tmp_path, "e", mode=None, model=str(run / "checkpoints" / "step-5"),
                    evals={0: {"s": "CCCCCCCCCW"}})
    other = make_run(tmp_path, "x", mode=None, model="someone/else", evals={0: {"s": "C" * 10}})
    analysis = analyze([run, ckpt, other], window=2)
    assert analysis.base_label == "step 0 of t"
    assert any("e evaluates a trained checkpoint" in n for n in analysis.notes)
    assert any("x evaluates someone/else" in n for n in analysis.notes)
    assert analyze([run, ckpt], base=ckpt).base_label == "e (step 0)"  # named: taken
    starting = make_run(tmp_path, "b", mode=None, evals={0: {"s": "WWWWWCCCCC"}})
    assert analyze([run, starting], window=2).base_label == "b"


def test_report_leaves_out_a_run_that_decodes_differently(tmp_path):
    from rlvr.rundir.write import write_config_toml

    run = make_run(tmp_path, "t", evals={0: {"s": ["CW"] * 10}, 5: {"s": ["CC"] * 10}})
    base = make_run(tmp_path, "b", mode=None, evals={0: {"s": ["CW"] * 10}})
    write_config_toml(base / "config.toml", {"kind": "eval", "model": {"path": "organism"},
                                             "eval": {"temperature": 0.6}}, seed=0)
    write_config_toml(run / "config.toml", {"kind": "train", "model": {"path": "organism"},
                                            "reward": {"mode": "outcome"},
                                            "rollout": {"temperature": 1.0}}, seed=0)
    summary = run / "eval" / "step-5" / "summary.json"
    summary.write_text(summary.read_text().replace('"temperature": 0.6', '"temperature": 1.0'))
    analysis = analyze([run], base=base, window=2)
    assert not analysis.comparisons
    assert any("decoding differs" in n and "temperature 0.6 (base) vs 1.0" in n
               for n in analysis.notes)
    assert len(analyze([run], base=base, window=2, allow=["mismatch"]).comparisons) == 1
