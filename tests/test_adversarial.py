"""Hostile inputs for the grader: nothing executes, nothing raises, every call ends promptly.

Model text reaches parsers (sympy's `parse_expr` evaluates Python; latex2sympy builds sympy
objects), so each payload below is aimed at one of them. Deadlines are asserted with a slack
for a loaded CI machine (`RLVR_TEST_SLACK_S`, default 1 s on top of the 1 s deadline); the
strict latency figures come from `benchmarks/fuzz_grader.py` (docs/reliability.md).
"""

from __future__ import annotations

import builtins
import os
import time

import pytest

from rlvr.grading import FORMATS, Grade, grade
from rlvr.grading.rewards import RewardSpec, score

DEADLINE_S = 1.0
SLACK_S = float(os.environ.get("RLVR_TEST_SLACK_S", "1.0"))



@pytest.fixture(scope="module", autouse=True)
def _warm_grader():
    # The first symbolic comparison in a process starts the grader's worker (importing sympy:
    # seconds on a busy machine); that start-up is outside every call's deadline.
    from rlvr.grading import warm_up

    warm_up()

def _timed_grade(response, gold, **kwargs) -> Grade:
    start = time.perf_counter()
    result = grade(response, gold, timeout_s=DEADLINE_S, **kwargs)
    elapsed = time.perf_counter() - start
    if result.timed_out:
        # Let the replacement worker start before the next call, so that call is decided
        # rather than timed out for want of a ready worker (bursts: test_a_burst_of_timeouts_does_not_stall, below).
        from rlvr.grading import warm_up

        warm_up()
    assert isinstance(result, Grade)
    assert result.format in FORMATS
    assert isinstance(result.reason, str) and result.reason
    assert elapsed < DEADLINE_S + SLACK_S, f"took {elapsed:.2f}s"
    return result


def _payloads(sentinel: str) -> list[str]:
    s = sentinel
    return [
        f"__import__('os').system('touch {s}')",
        f"__import__(\"os\").system(\"touch {s}\")",
        f"(lambda: __import__('os').system('touch {s}'))()",
        f"(lambda f: f('{s}', 'w').write('x'))(open)",
        f"open('{s}', 'w').write('x')",
        f"exec(\"open('{s}','w').write('x')\")",
        f"eval(\"__import__('os').system('touch {s}')\")",
        f"getattr(__import__('os'), 'system')('touch {s}')",
        f"().__class__.__base__.__subclasses__()[0].__init__.__globals__['os'].system('touch {s}')",
        f"x.__class__.__init__.__globals__['__builtins__']['open']('{s}','w')",
        f"Symbol('x').__globals__['os'].system('touch {s}')",
        f"[c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__=='Popen'][0](['touch','{s}'])",
        f"\\operatorname{{__import__}}('os').system('touch {s}')",
        f"\\mathrm{{exec}}(\\text{{open('{s}','w')}})",
        f"\\lambda x: __import__('os').system('touch {s}')",
        f"\\text{{__import__('os').system('touch {s}')}}",
        f"\\frac{{__import__('os').system('touch {s}')}}{{2}}",
        f"\\sqrt{{__import__('os').system('touch {s}')}}",
    ]


def _wrappings(payload: str) -> list[str]:
    return [
        f"\\boxed{{{payload}}}",
        f"The answer is {payload}",
        f"Final Answer: {payload}",
        f"${payload}$",
        payload,
    ]


def test_code_injection_never_executes(tmp_path):
    sentinel = tmp_path / "pwned"
    for payload in _payloads(str(sentinel)):
        for response in _wrappings(payload):
            _timed_grade(response, "2")
            # The gold is data too (a poisoned dataset): it must not execute either.
            _timed_grade("\\boxed{2}", payload)
            _timed_grade(response, payload)
            assert not sentinel.exists(), f"executed: {response[:80]!r}"


def test_no_model_text_reaches_eval_or_exec(monkeypatch, tmp_path):
    # sympy's parse_expr (and sympify of a string) is `eval` underneath. Spy on eval/exec for
    # any source that contains text from our inputs (a marker name, the sentinel path), with
    # Math-Verify running in this process (as it does inside the grader's worker) so the spy
    # sees the symbolic path too.
    from rlvr.grading import compare

    marker = "zqxmarker"
    sentinel = str(tmp_path / "pwned")
    seen: list[str] = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def tainted(source) -> bool:
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        return isinstance(text, str) and (marker in text or sentinel in text)

    def spy_eval(source, *args, **kwargs):
        if tainted(source):
            seen.append(f"eval: {str(source)[:80]}")
        return real_eval(source, *args, **kwargs)

    def spy_exec(source, *args, **kwargs):
        if tainted(source):
            seen.append(f"exec: {str(source)[:80]}")
        return real_exec(source, *args, **kwargs)

    monkeypatch.setattr(compare, "INLINE_SYMBOLIC", True, raising=False)
    monkeypatch.setattr(builtins, "eval", spy_eval)
    monkeypatch.setattr(builtins, "exec", spy_exec)
    cases = [(f"\\boxed{{{marker}**2 + 1}}", f"{marker}^2+1"),
             (f"The answer is 3*{marker} + 2", f"3{marker}+2"),
             (f"\\boxed{{{marker}.b(c)}}", "1"),
             (f"\\boxed{{\\operatorname{{{marker}}}(x)}}", "2"),
             (f"\\boxed{{\\mathrm{{{marker}}}}}", marker)]
    cases += [(response, "2") for payload in _payloads(sentinel) for response in _wrappings(payload)]
    for response, gold in cases:
        grade(response, gold)
    assert seen == []
    # The spy works: sympy's parser is caught.
    from sympy.parsing.sympy_parser import parse_expr

    parse_expr(f"{marker} + 1")
    assert seen and marker in seen[-1]


@pytest.mark.parametrize("response", [
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{9**9**9**9}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
    "\\boxed{10^{1000000}}",
    "\\boxed{1e1000000000}",
    "\\boxed{99999999999!}",
    "\\boxed{(10^{100})!}",
    "\\boxed{1000000!!}",
    "\\boxed{\\binom{10^{12}}{5 \\cdot 10^{11}}}",
    "\\boxed{\\sum_{n=1}^{10^{12}} n^{n}}",
    "\\boxed{\\prod_{k=1}^{10^{9}} k}",
    "\\boxed{\\frac{10^{10^{10}}}{3^{3^{3^{3}}}}}",
    "\\boxed{" + "9^{" * 60 + "9" + "}" * 60 + "}",
    "\\boxed{" + "+".join(["x"] * 5000) + "}",
    "\\boxed{" + "1" * 100_000 + "}",
])
@pytest.mark.parametrize("gold", ["12", "10^{10^{10^{10}}}"])
def test_huge_numbers_return_promptly(response, gold):
    result = _timed_grade(response, gold)
    assert result.correct_strict is (response == f"\\boxed{{{gold}}}")


def test_a_burst_of_timeouts_does_not_stall():
    # A training step grades ~1,000 responses one after another, and a policy can emit many
    # hard answers in a row: each timeout must cost about one deadline, not a worker start-up.
    # A 10 ms deadline on a symbolic comparison forces the timeouts.
    from rlvr.grading import warm_up

    warm_up()
    elapsed = []
    for _ in range(4):
        start = time.perf_counter()
        result = grade("\\boxed{\\sin^2 x + \\cos^2 x}", "1", timeout_s=0.01)
        elapsed.append(time.perf_counter() - start)
        if not result.timed_out:
            warm_up()
            pytest.skip("this machine finished the comparison within 10 ms")
    warm_up()  # leave ready workers for the tests after this one
    assert max(elapsed) < 0.01 + SLACK_S, [round(e, 2) for e in elapsed]


def test_huge_gold_returns_promptly():
    _timed_grade("\\boxed{12}", "9^{9^{9^{9}}}")
    _timed_grade("\\boxed{12}", "100000!")


@pytest.mark.parametrize("response", [
    "{" * 10_000 + "}" * 10_000,
    "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "\\boxed{" + "{" * 10_000,
    "\\boxed{" * 10_000,
    "\\frac{" * 10_000 + "1" + "}{2}" * 10_000,
    "\\boxed{" + "\\sqrt{" * 10_000 + "2" + "}" * 10_000 + "}",
    "(" * 10_000 + ")" * 10_000,
    "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}",
    "\\left(" * 5_000 + "\\right)" * 5_000,
])
def test_ten_thousand_nested_braces(response):
    result = _timed_grade(response, "1")
    assert not result.correct_strict or "1" in (result.extracted or "")


@pytest.mark.parametrize("make", [
    lambda: "a" * 1_000_000,
    lambda: "x " * 500_000 + "\\boxed{42}",
    lambda: "\\boxed{42}" + " lorem" * 170_000,
    lambda: "\\boxed{1} " * 100_000,
    lambda: "Let me think. " * 75_000,
    lambda: "<think>" + "z" * 1_000_000 + "</think> \\boxed{42}",
    lambda: "$" * 1_000_000,
    lambda: "\\" * 1_000_000,
    lambda: "The answer is " * 75_000,
    lambda: "1" * 1_000_000,
], ids=["letters", "spaces-then-box", "box-then-text", "box-spam", "loop", "think", "dollars",
        "backslashes", "answer-is", "digits"])
def test_one_megabyte_responses(make):
    response = make()
    assert len(response) >= 1_000_000
    result = _timed_grade(response, "42")
    # The reason is a short explanation, never the response echoed back.
    assert len(result.reason) < 1_000
    for text in (result.extracted, result.extracted_lenient):
        assert text is None or len(text) < 10_000


@pytest.mark.parametrize("response,gold", [
    ("\\boxed{4\x002}", "42"),
    ("\x00" * 1000, "1"),
    ("\\boxed{42}\x00", "42"),
    ("\\boxed{\ud800}", "1"),
    ("\\boxed{42} \udcff", "42"),
    ("\\boxed{1}", "\ud83d"),
    ("\ud800\udc00\ud800", "\x00"),
    ("\\boxed{\ufeff42}", "42"),
    ("\\boxed{４２}", "42"),
    ("\\boxed{42\u200b}", "42"),
    ("\\boxed{\u202e24}", "42"),
])
def test_nul_bytes_and_lone_surrogates(response, gold):
    result = _timed_grade(response, gold)
    # Every field must survive JSON and UTF-8 (logs, eval records, verl's extra info).
    for value in result.to_dict().values():
        if isinstance(value, str):
            value.encode("utf-8")


@pytest.mark.parametrize("gold", [None, "", "   ", "\\boxed{}", "$$", 12.8, ["12.8"], float("nan")])
def test_empty_or_odd_gold_never_raises_or_pays(gold):
    result = _timed_grade("\\boxed{}", gold)
    assert result.correct_strict is False
    if gold in (None, "", "   ", "\\boxed{}", "$$"):
        assert _timed_grade("\\boxed{0}", gold).correct_strict is False


def test_odd_response_types_never_raise():
    for response in (None, 12, b"\\boxed{12}", ["\\boxed{12}"]):
        result = _timed_grade(response, "12")
        assert result.format in FORMATS


def test_reward_of_hostile_input_is_zero(tmp_path):
    sentinel = tmp_path / "pwned"
    for payload in _payloads(str(sentinel)):
        reward, info = score(RewardSpec(), f"\\boxed{{{payload}}}", "2")
        assert reward == 0.0 and info["format"] in FORMATS
    assert not sentinel.exists()
