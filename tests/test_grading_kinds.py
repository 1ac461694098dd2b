"""The grader on notation kinds (issue #17): each positive beside its negatives."""

from __future__ import annotations

import pytest

from rlvr.grading import grade
from rlvr.grading.expr import parse
from rlvr.grading.sets import read_set
from rlvr.grading.value import numeric_equal, value_of
from rlvr.grading.words import word_class, word_number
from tests.grading_cases import b
from tests.grading_kinds import KINDS, STATED

BOXED_KINDS = [(kind, pred, gold, ok) for kind, rows in KINDS.items() for pred, gold, ok in rows]


def test_every_kind_has_positives_and_negatives():
    for kind, rows in KINDS.items():
        labels = {ok for *_, ok in rows}
        assert labels == {True, False} or kind == "must stay wrong", kind


@pytest.mark.parametrize(("kind", "pred", "gold", "ok"), BOXED_KINDS)
def test_kinds_boxed(kind: str, pred: str, gold: str, ok: bool):
    g = grade(b(pred), gold, timeout_s=20.0)
    assert (g.correct_lenient, g.correct_strict) == (ok, ok), (kind, g.reason)


@pytest.mark.parametrize(("response", "gold", "lenient", "strict"), STATED)
def test_stated_and_cut(response: str, gold: str, lenient: bool, strict: bool):
    g = grade(response, gold, timeout_s=20.0)
    assert (g.correct_lenient, g.correct_strict) == (lenient, strict), g.reason
    if g.extracted is None:
        assert not g.correct_strict


def test_kinds_never_reach_the_symbolic_worker():
    # The kinds are decided by structure, sets, words and values: fast, and the same in any
    # process. (A few may still need sympy; most must not, or the speed target is lost.)
    symbolic = [(p, gl) for _, p, gl, _ in BOXED_KINDS if "symbolic" in grade(b(p), gl, timeout_s=20.0).reason]
    assert len(symbolic) <= len(BOXED_KINDS) // 10, symbolic


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "9**9**9**9", "10^{10^{10}}", "1000!", "x" * 400,
    "\\unknowncommand{3}", "(1,2", "2^{" * 60 + "1" + "}" * 60, "np.load('f')", "lambda: 1",
])
def test_reader_refuses_unsafe_or_huge_input(text: str):
    tree = parse(text)
    assert tree is None or value_of(text) is None


def test_values_are_exact_where_they_can_be():
    assert value_of("2\\cdot 5!\\cdot 5!") == 28800
    assert value_of("\\frac{10!}{8!\\,2!}") == 45
    assert value_of("\\sqrt[3]{-8}") == -2
    assert numeric_equal("x^2+2x+1", "(x+1)^2") is True
    assert numeric_equal("x^2+2x", "(x+1)^2") is False
    assert numeric_equal("\\frac{22}{7}", "\\pi") is False


def test_sets_read_every_notation_alike():
    union = read_set("(-\\infty,2)\\cup(3,\\infty)")
    assert union == read_set("x<2 or x>3") == read_set("3 < x or x < 2")
    assert read_set("\\emptyset") == read_set("\\{\\}") == []
    assert read_set("(1,2)\\cup(2,3)") != read_set("(1,3)")
    assert read_set("(1,2]\\cup(2,3)") == read_set("(1,3)")
    assert read_set("x + y > 2") is None  # two variables: not a set of reals


def test_words():
    assert word_number("twenty-one") == 21
    assert word_number("five sixths") == pytest.approx(5 / 6)
    assert word_number("one hundred and five") == 105
    assert word_number("banana") is None and word_number("a") is None
    assert word_class("does not exist") == word_class("DNE") != word_class("no solution")


@pytest.mark.parametrize(("pred", "gold"), [
    ("}>", "and"), ("|", "and or \\sqrt y"), ("y", "10^{400}"), ("x", "-300!"),
    ("10^{400}", "i"), ("|x-1| < -2", "\\emptyset"), ("x<1 or", "or"),
])
def test_odd_inputs_are_graded_not_errors(pred: str, gold: str):
    # found by a random-token fuzz of the new readers: each once raised inside the grader
    g = grade(b(pred), gold, timeout_s=20.0)
    assert not g.reason.startswith("grader error"), g.reason
