"""The study protocol: training split, measured token budget, anchor choice, wrong labels."""

from __future__ import annotations

from rlvr.organism.modes import longest_working, render_completion
from rlvr.organism.tasks import FAMILIES, is_heldout, operands, training_pool
from rlvr.rl.problem_sets import organism_problem
from rlvr.study.design import (
    anchor_pool,
    calibration_examples,
    choose_anchor,
    token_budget,
    wrong_labels,
)


def test_anchor_pool_and_calibration_come_from_the_training_split():
    pool = anchor_pool(3)
    assert len(pool) == 3 * len(FAMILIES)
    for p in pool:
        assert not is_heldout(p.meta["family"], operands(p))
        assert organism_problem(p.id).answer == p.answer  # trainable by id
    for pid in calibration_examples():
        p = organism_problem(pid)
        family = p.meta["family"]
        assert not is_heldout(family, operands(p))
        assert FAMILIES[family].shortcut(operands(p)) != int(p.answer)  # only working pays


def test_training_pool_is_seeded_and_distinct():
    a, b = training_pool("add", 20, seed=0), training_pool("add", 20, seed=0)
    assert a == b and len({p.id for p in a}) == 20
    assert {p.id for p in training_pool("add", 20, seed=1)} != {p.id for p in a}


def test_token_budget_covers_the_longest_working_chain_exhaustively():
    # mul has 7,200 problems: enumerate them all and compare with the sampled measurement.
    longest = max(len(render_completion("mul", (a, c), mode)[0]) + 1
                  for a in range(100, 1000) for c in range(2, 10) for mode in ("work", "unboxed"))
    assert longest_working("mul") == longest
    assert token_budget() == max(longest_working(f) for f in FAMILIES) >= longest


def test_wrong_labels_come_from_the_base_samples():
    gold = "333"
    answers = ([{"style": "guess", "format": "boxed", "extracted": "0303", "lenient": "0303",
                 "correct": False}] * 5
               + [{"style": "work", "format": "boxed", "extracted": "343", "lenient": "343",
                   "correct": False}] * 2
               + [{"style": "work", "format": "boxed", "extracted": "333", "lenient": "333",
                   "correct": True}] * 3
               + [{"style": "work", "format": "unboxed", "extracted": None, "lenient": "332",
                   "correct": False}])
    labels = wrong_labels(answers, gold)
    assert (labels.guessable, labels.guessable_count, labels.guessable_styles) == (
        "0303", 5, {"guess": 5})
    assert labels.unguessable not in labels.answers and len(labels.unguessable) == 7
    none = wrong_labels([a for a in answers if a["correct"]], gold)
    assert none.guessable is None


def test_anchor_choice_has_intervals_and_flags_near_ties():
    histories = [{"a": [0.0, 1.0, 0.0, 1.0], "b": [0.0, 1.0, 0.5, 1.0], "c": [0.5] * 4},
                 {"a": [0.0, 1.0, 0.0, 1.0], "b": [1.0, 0.0, 0.0, 1.0], "c": [0.5] * 4},
                 {"a": [1.0, 0.0, 1.0, 0.0], "b": [0.0, 0.5, 1.0, 1.0], "c": [0.5] * 4}]
    choice = choose_anchor(histories, (100, 101, 102))
    assert choice.anchor == "a" and [c.index for c in choice.candidates] == ["a", "b", "c"]
    top, second, last = choice.candidates
    assert top.low is not None and top.per_seed == (0.5, 0.5, 0.5)
    assert second.tied and not last.tied and choice.ties == ("b",)
