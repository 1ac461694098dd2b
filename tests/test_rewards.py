"""Reward modes, the spec, random draws and wrong labels (rlvr.grading.rewards)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from rlvr.errors import UserError
from rlvr.grading import FORMATS, Grade
from rlvr.grading.rewards import (
    REWARD_MODES,
    RewardSpec,
    bernoulli_draw,
    format_reward,
    get_reward_fn,
    make_wrong_label,
    none_reward,
    outcome_reward,
    random_reward,
    score,
    score_many,
    wrong_label_reward,
)


def _grade(fmt: str = "boxed", strict: bool = False, lenient: bool = False,
           extracted: str | None = "5") -> Grade:
    return Grade(extracted=extracted, extracted_lenient=extracted, format=fmt,
                 correct_strict=strict, correct_lenient=lenient, timed_out=False, reason="test")


# --- each mode as a function of a Grade -----------------------------------------------------

@pytest.mark.parametrize("strict,expected", [(True, 1.0), (False, 0.0)])
def test_outcome_pays_only_a_correct_box(strict, expected):
    reward, info = outcome_reward(_grade(strict=strict, lenient=True))
    assert reward == expected
    assert info["reward"] == expected and info["reward_mode"] == "outcome"
    assert info["format"] == "boxed" and info["correct_strict"] is strict


def test_outcome_pays_nothing_for_a_right_unboxed_answer():
    assert outcome_reward(_grade(fmt="unboxed", strict=False, lenient=True))[0] == 0.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_pays_any_well_formed_box_and_nothing_else(fmt):
    reward, _ = format_reward(_grade(fmt=fmt, strict=False))
    assert reward == (1.0 if fmt == "boxed" else 0.0)


def test_format_ignores_correctness():
    assert format_reward(_grade(strict=False))[0] == format_reward(_grade(strict=True))[0] == 1.0


@pytest.mark.parametrize("strict", [True, False])
def test_none_is_always_zero(strict):
    reward, info = none_reward(_grade(strict=strict))
    assert reward == 0.0 and info["reward_mode"] == "none"


def test_wrong_label_reward_reads_the_grade_against_the_label():
    assert wrong_label_reward(_grade(strict=True))[0] == 1.0
    assert wrong_label_reward(_grade(strict=False))[0] == 0.0


def test_info_carries_every_grade_field():
    g = _grade(fmt="truncated", extracted=None)
    _, info = outcome_reward(g)
    for name, value in g.to_dict().items():
        assert info[name] == value


# --- random ---------------------------------------------------------------------------------

def test_random_is_deterministic_in_seed_and_key():
    g = _grade()
    first = [random_reward(g, key=(3, "ex", i), seed=7)[0] for i in range(200)]
    again = [random_reward(g, key=(3, "ex", i), seed=7)[0] for i in range(200)]
    other_seed = [random_reward(g, key=(3, "ex", i), seed=8)[0] for i in range(200)]
    assert first == again
    assert first != other_seed


def test_random_ignores_the_response():
    key = (1, 2, 3)
    rewards = {random_reward(_grade(strict=s, fmt=f), key=key, seed=0)[0]
               for s in (True, False) for f in FORMATS}
    assert len(rewards) == 1


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_random_rate_matches_p(p):
    rewards = [random_reward(_grade(), key=i, p=p, seed=1)[0] for i in range(4000)]
    mean = statistics.fmean(rewards)
    if p in (0.0, 1.0):
        assert mean == p
    else:
        # 4000 draws: the standard error is ≤ 0.008, so 0.03 is ~4 standard errors.
        assert abs(mean - p) < 0.03


def test_random_keys_from_numpy_match_python_ints():
    assert bernoulli_draw(0, (np.int64(5), np.int32(2))) == bernoulli_draw(0, (5, 2))
    assert bernoulli_draw(0, [1, 2]) == bernoulli_draw(0, (1, 2))


def test_random_without_a_key_is_an_error_not_a_constant():
    with pytest.raises(UserError, match="key"):
        random_reward(_grade(), key=None)


def test_random_rejects_unhashable_key_types():
    with pytest.raises(UserError, match="key"):
        bernoulli_draw(0, {"step": 1})


def test_bernoulli_draw_is_in_unit_interval():
    draws = [bernoulli_draw(s, k) for s in range(5) for k in range(200)]
    assert all(0.0 <= d < 1.0 for d in draws)


# --- registry and spec ----------------------------------------------------------------------

def test_registry_lists_the_six_modes():
    assert set(REWARD_MODES) == {"outcome", "format", "none", "random", "wrong_label", "paper"}
    for mode in REWARD_MODES:
        assert callable(get_reward_fn(mode))


def test_unknown_mode_lists_valid_names():
    with pytest.raises(UserError) as err:
        get_reward_fn("outcomes")
    message = str(err.value)
    assert "outcomes" in message
    for mode in REWARD_MODES:
        assert mode in message


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "nope"}, "unknown reward mode"),
    ({"mode": "wrong_label"}, "replacement label"),
    ({"mode": "wrong_label", "wrong_label_kind": "easy"}, "wrong_label_kind"),
    ({"mode": "wrong_label", "label": "  "}, "empty"),
    ({"mode": "outcome", "label": "3"}, "only apply"),
    ({"mode": "random", "p": 1.5}, r"\[0, 1\]"),
    ({"mode": "random", "p": "0.5"}, r"\[0, 1\]"),
    ({"mode": "random", "seed": 1.5}, "integer"),
])
def test_spec_rejects_bad_settings(kwargs, match):
    with pytest.raises(UserError, match=match):
        RewardSpec(**kwargs)


def test_spec_is_frozen_and_round_trips():
    spec = RewardSpec(mode="wrong_label", label="12.7", wrong_label_kind="guessable", seed=3)
    with pytest.raises(AttributeError):
        spec.mode = "outcome"  # type: ignore[misc]
    assert RewardSpec(**spec.to_dict()) == spec


def test_label_for_uses_the_gold_except_in_wrong_label_mode():
    assert RewardSpec(mode="outcome").label_for("12.8") == "12.8"
    assert RewardSpec(mode="wrong_label", label="4200").label_for("12.8") == "4200"


# --- wrong labels ---------------------------------------------------------------------------

@pytest.mark.parametrize("gold,seed,expected", [
    ("12.8", 0, "12.7"),
    ("12.8", 1, "12.9"),
    ("42", 0, "41"),
    ("42", 1, "43"),
    ("-3", 0, "-4"),
    ("0.05", 0, "0.04"),
    ("\\frac{4}{3}", 0, "1"),
    ("\\frac{4}{3}", 1, "\\frac{5}{3}"),
    ("\\dfrac{1}{6}", 1, "\\frac{1}{3}"),
    ("3/7", 0, "\\frac{2}{7}"),
    ("10,\\!080", 0, "10079"),
    ("1\\,000", 1, "1001"),
    ("3\\sqrt{13}", 0, "3\\sqrt{12}"),
    ("$025$", 0, "24"),
])
def test_guessable_wrong_label_rules(gold, seed, expected):
    assert make_wrong_label(gold, "guessable", seed) == expected


def test_guessable_label_is_never_equivalent_to_the_gold():
    for gold in ("12.8", "\\frac{4}{3}", "7", "2\\pi", "(1, 2)"):
        for seed in (0, 1):
            label = make_wrong_label(gold, "guessable", seed)
            assert label != gold
            assert score(RewardSpec(), f"\\boxed{{{label}}}", gold)[0] == 0.0


def test_guessable_label_without_digits_asks_for_a_label():
    with pytest.raises(UserError, match="label"):
        make_wrong_label("\\text{even}", "guessable", 0)


def test_unguessable_label_is_deterministic_and_far_from_the_gold():
    label = make_wrong_label("12.8", "unguessable", 0)
    assert label == make_wrong_label("12.8", "unguessable", 0)
    assert label != make_wrong_label("12.8", "unguessable", 1)
    assert label.isdigit() and len(label) == 7
    assert score(RewardSpec(), f"\\boxed{{{label}}}", "12.8")[0] == 0.0


def test_unknown_wrong_label_kind():
    with pytest.raises(UserError, match="guessable"):
        make_wrong_label("3", "nearby", 0)


# --- score: grade then reward ---------------------------------------------------------------

def test_score_outcome_end_to_end():
    reward, info = score(RewardSpec(), "So the answer is \\boxed{12.8}.", "12.8")
    assert reward == 1.0
    assert info["extracted"] == "12.8" and info["format"] == "boxed"
    assert info["label"] == "12.8" and info["gold"] == "12.8"
    assert info["true_correct_strict"] is True


def test_score_wrong_label_grades_against_the_label_and_keeps_true_accuracy():
    spec = RewardSpec(mode="wrong_label", wrong_label_kind="guessable")
    right, info_right = score(spec, "\\boxed{12.8}", "12.8")
    near, info_near = score(spec, "\\boxed{12.7}", "12.8")
    assert (right, near) == (0.0, 1.0)
    assert info_near["label"] == "12.7"
    assert info_right["true_correct_strict"] is True
    assert info_near["true_correct_strict"] is False


def test_score_format_mode_pays_a_wrong_box():
    assert score(RewardSpec(mode="format"), "\\boxed{99}", "12.8")[0] == 1.0
    assert score(RewardSpec(mode="format"), "the answer is 12.8", "12.8")[0] == 0.0


def test_score_random_needs_and_uses_the_key():
    spec = RewardSpec(mode="random", seed=5)
    with pytest.raises(UserError):
        score(spec, "\\boxed{1}", "1")
    rewards = [score(spec, "\\boxed{1}", "1", key=(0, 0, i))[0] for i in range(64)]
    assert set(rewards) == {0.0, 1.0}


def test_score_truncated_response_earns_no_outcome():
    reward, info = score(RewardSpec(), "so \\boxed{12.8", "12.8")
    assert reward == 0.0 and info["format"] == "truncated"


def test_score_many_matches_score():
    spec = RewardSpec(mode="wrong_label", label="5")
    responses = ["\\boxed{5}", "\\boxed{4}", "no box: 5", "\\boxed{}"]
    golds = ["4", "4", "4", "4"]
    batch = score_many(spec, responses, golds, keys=[(0, 0, i) for i in range(4)], workers=1)
    single = [score(spec, r, g, key=(0, 0, i)) for i, (r, g) in enumerate(zip(responses, golds, strict=True))]
    assert [r for r, _ in batch] == [r for r, _ in single] == [1.0, 0.0, 0.0, 0.0]
    assert [i["true_correct_strict"] for _, i in batch] == [False, True, False, False]
    assert [i["format"] for _, i in batch] == [i["format"] for _, i in single]


def test_score_many_checks_lengths():
    with pytest.raises(ValueError):
        score_many(RewardSpec(), ["a", "b"], ["1"])
