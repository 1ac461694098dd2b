"""The grader's decisions: the `Grade` record and the rules that turn an extraction into it.

`grade` extracts the final answer (strict: the last box; lenient: boxed or stated), classifies
the response's format, and decides equivalence with the gold as benchmarks store it. It never
raises, never evaluates model text, and bounds its time without signals (hard symbolic cases run
in a worker process with a deadline). docs/grading.md lists every rule and its reason.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass

from rlvr.grading import compare
from rlvr.grading.compare import Context, answers_equal_ctx
from rlvr.grading.deadline import symbolic_pool
from rlvr.grading.extract import Extraction, clean_text, extract
from rlvr.grading.formats import classify
from rlvr.grading.normalize import canonical, clean, gold_to_text
from rlvr.grading.stated import answer_like

log = logging.getLogger(__name__)

SPAM_MIN_DISTINCT = 4  # this many different boxed answers (not one boxed list) is box spam
MAX_RETRACTIONS = 2  # "6. No wait, 8. No wait, 6": this many retractions is a loop, not an answer
AFTER_BOX_CHARS = 40  # a cut-off text this long after its last box was still working


@dataclass(frozen=True)
class Grade:
    extracted: str | None  # the boxed final answer (strict extraction), None if no box
    extracted_lenient: str | None  # final answer boxed or not (lenient extraction)
    format: str  # one of FORMATS
    correct_strict: bool  # boxed final answer equals gold; False when no box
    correct_lenient: bool  # final answer, boxed or not, equals gold
    timed_out: bool
    reason: str  # short human reason for the decision (never the whole response)

    def to_dict(self) -> dict:
        return asdict(self)


def answers_equal(pred: str, gold: str, *, timeout_s: float = 1.0) -> bool:
    """True if two answer strings (not whole responses) are equivalent; never raises."""
    try:
        ctx = Context(deadline=time.monotonic() + timeout_s)
        return answers_equal_ctx(clean_text(pred), gold_to_text(gold), ctx)
    except Exception as exc:  # a grader bug must not stop a training run; it is logged
        log.warning("answers_equal failed: %s", type(exc).__name__)
        return False


def _boxed_answer(ex: Extraction) -> str | None:
    """The final box, or the boxed list it ends ("\\boxed{1}, \\boxed{2}") when items differ."""
    if ex.strict is None:
        return None
    distinct = list(dict.fromkeys(g for g in ex.group if g))
    return ", ".join(distinct) if len(distinct) > 1 else ex.strict


def _box_spam(ex: Extraction) -> int:
    if len(ex.boxes) < SPAM_MIN_DISTINCT:
        return 0
    keys = {canonical(clean(b.content).text) for b in ex.boxes if b.content}
    group = {canonical(clean(g).text) for g in ex.group if g}
    return len(keys) if len(keys) >= SPAM_MIN_DISTINCT and keys != group else 0


def _worked_on_after_box(ex: Extraction) -> bool:
    """A cut-off response that kept computing after its last box: that box was an
    intermediate result ("\\boxed{7} for part one. Next, 7 + 5 = 12 so the"), not the answer."""
    closed = [b for b in ex.boxes if b.content is not None]
    tail = ex.final_text[closed[-1].end :].strip() if closed else ""
    return len(tail) > AFTER_BOX_CHARS or re.search(r"[=\d]", tail) is not None


def _decide(ex: Extraction, fmt: str, gold: str, ctx: Context) -> tuple[str | None, bool, bool, str]:
    """(lenient answer, correct_strict, correct_lenient, reason)."""
    boxed = _boxed_answer(ex)
    spam = _box_spam(ex)
    if spam:
        return boxed, False, False, f"box spam: {spam} different boxed answers"
    if ex.retractions >= MAX_RETRACTIONS:
        return boxed or ex.stated, False, False, f"the answer keeps changing ({ex.retractions} retractions)"
    if boxed and fmt == "truncated" and _worked_on_after_box(ex):
        return boxed, False, False, "cut off while still working after the last box: no final answer"
    if boxed and ex.hedge and not answers_equal_ctx(ex.hedge, boxed, ctx):
        return boxed, False, False, "hedged: a different alternative follows the box"
    if boxed:
        equal = answers_equal_ctx(boxed, gold, ctx)
        correction = ex.correction if ex.correction and answer_like(ex.correction) else None
        if correction and not answers_equal_ctx(correction, boxed, ctx):
            fixed = answers_equal_ctx(correction, gold, ctx)
            verdict = "equals" if fixed else "differs from"
            return correction, False, fixed, f"an unboxed correction after the box {verdict} gold"
        verdict = "equals" if equal else "differs from"
        return boxed, equal, equal, f"boxed answer {verdict} gold ({ctx.method})"
    lenient = ex.stated
    if lenient is None and fmt not in ("truncated", "repetition"):
        lenient = ex.last_value  # a truncated or looping text's last number is not an answer
    if lenient is None:
        what = "empty box" if fmt == "empty_box" else "no final answer found"
        return None, False, False, what if fmt != "truncated" else f"{what} (truncated)"
    equal = answers_equal_ctx(lenient, gold, ctx)
    verdict = "equals" if equal else "differs from"
    return lenient, False, equal, f"no box; stated answer {verdict} gold ({ctx.method})"


def _grade(response: object, gold: object, finish_reason: str | None, timeout_s: float) -> Grade:
    ctx = Context(deadline=time.monotonic() + timeout_s)
    text = clean_text(response)
    ex = extract(text)
    has_stated = ex.stated is not None or ex.last_value is not None
    fmt = classify(ex, text, finish_reason, has_stated)
    gold_text = clean_text(gold_to_text(gold)).strip()
    if not gold_text:
        return Grade(ex.strict, ex.strict, fmt, False, False, False, "empty gold: nothing to compare")
    lenient, strict_ok, lenient_ok, reason = _decide(ex, fmt, gold_text, ctx)
    if ctx.notes:
        reason = f"{reason}; {ctx.notes[-1]}"
    if ctx.timed_out:
        reason = f"comparison exceeded the {timeout_s:g} s deadline; {reason}"
    if fmt == "unboxed" and lenient is None:
        fmt = "no_answer"
    return Grade(_boxed_answer(ex), lenient, fmt, strict_ok, lenient_ok, ctx.timed_out, reason)


def grade(
    response: str, gold: str, *, finish_reason: str | None = None, timeout_s: float = 1.0
) -> Grade:
    """Grade one response against a gold answer. Never raises; works from any thread.

    The first call starts the symbolic worker process in the background; a hard case that
    arrives before it is ready waits for it (once per process) before its deadline starts.
    Call `warm_up()` first to keep that wait out of a timed loop.
    """
    try:
        if not compare.INLINE_SYMBOLIC:
            symbolic_pool().prestart()
        return _grade(response, gold, finish_reason, timeout_s)
    except Exception as exc:  # a grader bug must not stop a training run; it is logged
        log.warning("grader error (%s); graded as incorrect", type(exc).__name__)
        return Grade(None, None, "no_answer", False, False, False, f"grader error: {type(exc).__name__}")


def warm_up() -> None:
    """Start the symbolic worker process(es) and wait until they are ready."""
    symbolic_pool().warm()
