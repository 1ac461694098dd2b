"""Property-based fuzzing of `grade`: it never raises, ends within its deadline, and is
deterministic, on random text and on LaTeX-shaped strings built from the pieces real responses
(and broken responses) are made of. CI-sized; `benchmarks/fuzz_grader.py` runs 100,000 inputs.

Strategies live in `tests/_fuzz_strategies.py` so the long run fuzzes exactly the same shapes.
"""

from __future__ import annotations

import os
import time

import pytest
from _fuzz_strategies import golds, latex_responses, realistic_golds, responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlvr.grading import FORMATS, Grade, grade

DEADLINE_S = 1.0
# Slack for a loaded 2-core CI machine; the strict latency figures are the benchmark's.
SLACK_S = float(os.environ.get("RLVR_TEST_SLACK_S", "1.0"))

FUZZ = settings(
    max_examples=int(os.environ.get("RLVR_FUZZ_EXAMPLES", "150")),
    deadline=None,  # we time calls ourselves, against the grader's own deadline
    derandomize=True,  # CI sees the same inputs every run; the long run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)



@pytest.fixture(scope="module", autouse=True)
def _warm_grader():
    # The first symbolic comparison in a process starts the grader's worker (importing sympy:
    # seconds on a busy machine); that start-up is outside every call's deadline.
    from rlvr.grading import warm_up

    warm_up()

def check(response: object, gold: object, finish_reason: str | None = None) -> Grade:
    start = time.perf_counter()
    result = grade(response, gold, finish_reason=finish_reason, timeout_s=DEADLINE_S)
    elapsed = time.perf_counter() - start
    if result.timed_out:
        # Let the replacement worker start before the next call, so that call is decided
        # rather than timed out for want of a ready worker (bursts: test_adversarial.py::test_a_burst_of_timeouts_does_not_stall).
        from rlvr.grading import warm_up

        warm_up()
    assert elapsed < DEADLINE_S + SLACK_S, f"{elapsed:.2f}s for {str(response)[:80]!r}"
    assert isinstance(result, Grade)
    assert result.format in FORMATS
    assert isinstance(result.correct_strict, bool) and isinstance(result.correct_lenient, bool)
    assert isinstance(result.timed_out, bool) and isinstance(result.reason, str)
    # grade() turns its own exceptions into "grader error" Grades so training survives; the
    # fuzzer's job is to find them.
    assert not result.reason.startswith("grader error"), (str(response)[:200], result.reason)
    assert result.extracted is None or isinstance(result.extracted, str)
    assert result.extracted_lenient is None or isinstance(result.extracted_lenient, str)
    if result.correct_strict:
        # The outcome reward is paid only for a box.
        assert result.extracted is not None
    if finish_reason == "length":
        assert result.format in ("truncated", "repetition")
    return result


def check_deterministic(response: object, gold: object, finish_reason: str | None = None) -> None:
    first = check(response, gold, finish_reason)
    second = check(response, gold, finish_reason)
    if not (first.timed_out or second.timed_out):
        # A timeout depends on the machine's load; every other decision must not.
        assert first == second


@FUZZ
@given(responses(), golds())
def test_random_text(response, gold):
    check_deterministic(response, gold)


@FUZZ
@given(latex_responses(), golds())
def test_latex_shaped(response, gold):
    check_deterministic(response, gold)


@FUZZ
@given(latex_responses(), st.sampled_from([None, "stop", "length", "", "weird"]))
def test_finish_reasons(response, finish_reason):
    check(response, "12.8", finish_reason)


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=50),
                 st.lists(st.text(max_size=5), max_size=3)),
       st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text(max_size=5), max_size=3)))
def test_non_string_inputs(response, gold):
    check(response, gold)


@FUZZ
@given(realistic_golds(), latex_responses())
def test_boxed_gold_is_correct_whatever_precedes_it(gold, prefix):
    # Reasoning before the final box must not change the decision on the box (a false negative
    # teaches a policy that the right answer is wrong). The prefix is cut at its last box so the
    # response has exactly one final answer.
    prefix = prefix.replace("<think>", "").replace("\\boxed", "").replace("\\fbox", "")
    result = check(f"{prefix}\n\nFinal: \\boxed{{{gold}}}", gold)
    if result.format == "boxed" and not result.timed_out:
        assert result.correct_strict, (gold, prefix, result.reason)
