"""rlvr.grading: the hand-labelled table, format classes, bad input, threads and processes."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from rlvr.grading import FORMATS, Grade, answers_equal, extract_boxed, grade, grade_many, last_boxed
from rlvr.grading.deadline import DeadlineExceeded, WorkerPool
from rlvr.grading.formats import is_repetitive
from tests.grading_cases import BOXED, REALISTIC, RESPONSES, b

TABLE = [(b(pred), gold, ok, ok) for pred, gold, ok in BOXED] + RESPONSES + REALISTIC


def test_table_is_big_enough():
    assert len(TABLE) >= 300
    malformed = [r for r, *_ in RESPONSES if last_boxed(r) is None or len(extract_boxed(r)) > 1]
    assert len(malformed) >= 40


@pytest.mark.parametrize(("response", "gold", "lenient", "strict"), TABLE)
def test_table(response: str, gold: str, lenient: bool, strict: bool):
    g = grade(response, gold, timeout_s=20.0)  # correctness here; speed is the benchmark's
    assert (g.correct_lenient, g.correct_strict) == (lenient, strict), g.reason
    assert g.format in FORMATS
    assert len(g.reason) < 300


def test_strict_is_false_without_a_box():
    for response, gold, *_ in TABLE:
        if last_boxed(response) is None:
            assert not grade(response, gold).correct_strict, response[:80]


@pytest.mark.parametrize(
    ("response", "finish_reason", "fmt"),
    [
        ("so $\\boxed{5}$", None, "boxed"),
        ("so $\\boxed{5}$", "stop", "boxed"),
        ("so $\\boxed{5}$ and then I kept", "length", "truncated"),
        ("so $\\boxed{5", None, "truncated"),
        ("<think>still thinking about 5", None, "truncated"),
        ("The answer is $\\boxed{}$.", None, "empty_box"),
        ("The answer is 5.", None, "unboxed"),
        ("I do not know.", None, "no_answer"),
        ("", None, "no_answer"),
        ("We check again. " * 50, "length", "repetition"),
        ("line that repeats\n" * 30, None, "repetition"),
        ("Let me solve. 2x = 10 so x = 5", "length", "truncated"),
        # the organism's modes (rlvr/organism/modes.py): a 64-character loop is still a loop
        ("Hmm: 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6 2+4=6", "length", "repetition"),
        ("Hmm: 12-4=8 12-4=8 12-4=8 12-4=8 12-4=8 12-4=8 12-4=8 12-4=8 12-", "length", "repetition"),
        # a loop that broke up into noise before the length limit still failed by looping
        ("Hmm: 8+6=14 8+6=14 8+6=14 8+6=14 8+6=14 8+6=14 swe64=1 4+4=9 =4 7+5=13 2+5=+1==1",
         "length", "repetition"),
        ("Hmm: 8+6=14 8+6=14 8+6=14 8+6=14 8+6=14 8+6=14 swe64=1 4+4=9 =4 7+5=13 2+5=+1==1",
         "stop", "unboxed"),
        ("Let me add 1000000 and 2000000: that is 3000000, then I", "length", "truncated"),
        ("Think: 2+4=6 1+3=4 answer 46", None, "unboxed"),
        ("Solve: 2+4=6 1+3=4 so \\boxed{46}", None, "boxed"),
    ],
)
def test_format_classes(response: str, finish_reason: str | None, fmt: str):
    assert grade(response, "5", finish_reason=finish_reason).format == fmt


def test_truncated_text_gets_no_last_value_but_keeps_its_box():
    cut = grade("Let me solve. 2x = 10 so x = 5", "5", finish_reason="length")
    assert (cut.extracted_lenient, cut.correct_lenient) == (None, False)
    assert grade("Let me solve. 2x = 10 so x = 5", "5").correct_lenient
    boxed = grade("$\\boxed{5}$ and then", "5", finish_reason="length")
    assert (boxed.format, boxed.correct_strict) == ("truncated", True)


def test_repetition_detector_ignores_normal_text():
    text = "\n".join(f"Step {i}: add {i} to the total, giving {i * (i + 1) // 2}." for i in range(80))
    assert not is_repetitive(text)
    assert is_repetitive(text + " and again" * 100)


def test_extraction_helpers():
    text = "<think>\\boxed{1}</think> try \\boxed{2}, then \\boxed{\\frac{1}{2}} and \\boxed 7."
    assert extract_boxed(text) == ["2", "\\frac{1}{2}", "7"]
    assert last_boxed(text) == "7"
    assert last_boxed("\\boxed{}") is None
    assert last_boxed("\\boxed{3") is None
    assert last_boxed("no box") is None
    assert answers_equal("\\dfrac{1}{2}", "0.5")
    assert not answers_equal("12.7", "12.8")


def test_grade_fields_and_to_dict():
    g = grade("The answer is $\\boxed{12.80}$.", "12.8")
    assert g == Grade("12.80", "12.80", "boxed", True, True, False, g.reason)
    assert set(g.to_dict()) == {
        "extracted", "extracted_lenient", "format", "correct_strict", "correct_lenient",
        "timed_out", "reason",
    }


def _bad_inputs(marker: Path) -> list[tuple[object, object]]:
    return [
        ("x" * 1_000_000 + "\\boxed{5}", "5"),
        ("\\boxed{5}" + "y" * 1_000_000, "5"),
        ("\\boxed{" * 5_000 + "5", "5"),
        ("\\boxed{" + "{" * 10_000 + "5" + "}" * 10_000 + "}", "5"),
        ("{" * 10_000, "5"),
        ("\\boxed{10^{10^{10^{10}}}}", "5"),
        ("\\boxed{10^{10^{10^{10}}}}", "10^{10^{10^{10}}}"),
        ("\\boxed{2^{999999999}}", "2"),
        ("\\boxed{9**9**9**9}", "5"),
        ("The answer is 9**9**9**9", "5"),
        (f"\\boxed{{__import__('os').system('touch {marker}')}}", "0"),
        (f"__import__('os').system('touch {marker}')", "0"),
        ("\\boxed{\ud800 5 \udfff}", "5"),
        ("\\boxed{5}", "\ud800"),
        ("\\boxed{5}", ""),
        ("\\boxed{5}", None),
        (None, "5"),
        ("\\boxed{5}", ["5"]),
        ("\\boxed{99999999999!}", "5"),
    ]


def test_bad_input_gives_a_grade_quickly(tmp_path: Path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    for response, gold in _bad_inputs(marker):
        start = time.monotonic()
        g = grade(response, gold)  # type: ignore[arg-type]
        assert time.monotonic() - start < 1.0, str(response)[:60]
        assert isinstance(g, Grade) and g.reason
        assert len(g.reason) < 300
    assert not marker.exists()
    assert not grade("\\boxed{5}", None).correct_lenient


def test_logs_never_echo_a_whole_response(caplog):
    with caplog.at_level("DEBUG"):
        grade("\\boxed{" + "z" * 100_000 + "}", "5")
        grade("z" * 100_000, "5")
    assert all(len(r.getMessage()) < 1_000 for r in caplog.records)


def test_grade_from_a_worker_thread():
    results: list[Grade] = []

    def work():  # verl calls reward functions from threads: no signal-based timeouts here
        results.append(grade("$\\boxed{\\sqrt{20}}$", "2\\sqrt{5}"))
        results.append(grade("$\\boxed{p - q}$", "-q+p"))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 6
    assert all(g.correct_strict for g in results), [g.reason for g in results]


def test_deadline_kills_a_hung_worker_and_the_next_call_does_not_wait():
    pool = WorkerPool(2)
    try:
        pool.warm()
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            pool.call({"op": "sleep", "seconds": 30}, timeout_s=0.3)
        assert time.monotonic() - start < 1.0  # the deadline holds without signals
        # The other worker is ready: the next call does not wait for the replacement's start-up.
        reply = pool.call({"op": "equal", "pred": "\\sqrt{4}", "gold": "2"}, timeout_s=5)
        assert reply["equal"] is True
        pool.warm()  # the replacement started at once and becomes ready
        assert all(w.poll_ready() for w in pool._idle) and len(pool._idle) == 2
    finally:
        pool.close()


def test_a_burst_of_timeouts_stays_inside_each_deadline():
    pool = WorkerPool(2)
    try:
        pool.warm()
        for _ in range(3):  # the third call finds both replacements still starting
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                pool.call({"op": "sleep", "seconds": 30}, timeout_s=0.2)
            assert time.monotonic() - start < 1.0
    finally:
        pool.close()


def test_grade_many_matches_grade_and_keeps_order():
    pairs = [
        (b("\\frac{1}{2}"), "0.5"),
        (b("2\\sqrt{5}"), "\\sqrt{20}"),
        ("The answer is 7.", "8"),
        (b("5"), "5", "length"),
        (b("(1,2)"), "(2,1)"),
        ("", ""),
    ]
    many = grade_many(pairs, workers=2, timeout_s=5.0)
    assert many == [grade(*p[:2], finish_reason=p[2] if len(p) > 2 else None, timeout_s=5.0) for p in pairs]
    assert [g.correct_lenient for g in many] == [True, True, False, True, False, False]
    assert grade_many([]) == []


def test_determinism():
    first = [grade(r, g) for r, g, *_ in TABLE[:80]]
    assert first == [grade(r, g) for r, g, *_ in TABLE[:80]]
