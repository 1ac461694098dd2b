"""The format class of a response, and the repetition (loop) detector it relies on.

Classes, checked in this order (the first that applies wins):
  repetition  the response ends in a loop (see `is_repetitive`), or it hit the length limit
              after looping for a large part of it (see `looped_then_degenerated`)
  truncated   finish_reason == "length", an unclosed box, an unclosed <think> block, or a text
              that stops mid-sentence or mid-formula (see `looks_cut`)
  empty_box   the final box is empty (`\\boxed{}`)
  boxed       the final answer is a non-empty box
  unboxed     no box, but the lenient extractor found a stated answer
  no_answer   nothing that reads as a final answer
A loop usually also hits the length limit; "repetition" is the more specific diagnosis.
"""

from __future__ import annotations

import math
import re

from rlvr.grading.extract import Extraction

FORMATS = ("boxed", "unboxed", "empty_box", "no_answer", "truncated", "repetition")

TAIL_CHARS = 4_000  # the detector reads only this many final characters
MIN_LOOP_CHARS = 200  # a loop must cover at least this many characters (or, in a short
SHORT_LOOP_SHARE = 0.6  # response, this share of it, and never fewer than SHORT_LOOP_CHARS) ...
SHORT_LOOP_CHARS = 32
MIN_REPEATS = 4  # ... and repeat its unit at least this many times
MAX_PERIOD = 400  # longest repeated unit (characters) we look for
LINE_REPEATS = 6  # or: one line (>= 8 chars) occurs this often among the last 24 lines


def is_repetitive(text: str) -> bool:
    """True when the response ends in a loop.

    Two checks on the last TAIL_CHARS characters:
    1. exact periodicity: for a period p <= MAX_PERIOD, the last
       max(min(MIN_LOOP_CHARS, 60% of the text, at least 32), MIN_REPEATS*p) characters equal
       themselves shifted by p (the tail is one unit repeated at least MIN_REPEATS times);
    2. repeated lines: among the last 24 non-empty lines one line of >= 8 characters occurs at
       least LINE_REPEATS times (loops that vary a little between units, e.g. a counter).
    Both are linear-ish in the tail (one slice comparison per period), never in the response.
    """
    tail = text[-TAIL_CHARS:].rstrip()
    n = len(tail)
    if n < SHORT_LOOP_CHARS:
        return False
    # A short response loops when the loop covers most of it (a char-level organism's loop
    # is 64 characters); a long one when the loop covers MIN_LOOP_CHARS.
    cover = max(SHORT_LOOP_CHARS, min(MIN_LOOP_CHARS, math.ceil(SHORT_LOOP_SHARE * n)))
    for p in range(1, MAX_PERIOD + 1):
        span = max(cover, MIN_REPEATS * p)
        if span + p > n:
            break
        if tail[-span:] == tail[-span - p : -p]:
            return True
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()][-24:]
    counts: dict[str, int] = {}
    for ln in lines:
        if len(ln) >= 8:
            counts[ln] = counts.get(ln, 0) + 1
    return any(c >= LINE_REPEATS for c in counts.values())


# A unit of 2..64 characters followed by at least 3 more copies of itself.
_REPEATED_UNIT = re.compile(r"(.{2,64}?)\1{3,}", re.DOTALL)
DEGENERATE_LOOP_SHARE = 0.3  # the loop covers at least this share of a length-limited response
DEGENERATE_LOOP_CHARS = 32  # and at least this many characters


def looped_then_degenerated(text: str) -> bool:
    """True when a length-limited response contains a long exact loop that later broke up.

    Small models loop for a while and then drift into noise before the token limit, so the
    tail check of `is_repetitive` misses them; the response still failed by looping. Only
    applied when finish_reason == "length" (a response that stopped on its own did not loop
    forever), and only to the last TAIL_CHARS characters, so the regex work stays bounded.
    """
    tail = text[-TAIL_CHARS:]
    need = max(DEGENERATE_LOOP_CHARS, math.ceil(DEGENERATE_LOOP_SHARE * len(tail)))
    if len(tail) < need:
        return False
    return any(m.end() - m.start() >= need for m in _REPEATED_UNIT.finditer(tail))


# A response cannot end on an operator, an open bracket, a dangling LaTeX command or a word
# that needs a continuation ("... and now we need to subtract the", "= 3 \\times").
_DANGLING_CHARS = set("=+-*/^_({[,&\\")
_DANGLING_WORDS = frozenset(
    "the an and or of to with for by from into onto than then so that which this these we is are "
    "was were be if because since but as at on let get gives give equals equal becomes become our "
    "its their now next subtract add multiply divide compute calculate find "
    "\\times \\cdot \\frac \\sqrt \\left \\div \\pm".split()
)
_LAST_WORD_RE = re.compile(r"\\?[A-Za-z]+$")


def looks_cut(text: str) -> bool:
    """True when a response visibly stops mid-sentence or mid-formula (whatever the
    finish_reason says): an unclosed `$`/`\\(`/`\\[`, or a dangling operator or word."""
    tail = text.rstrip().rstrip("*").rstrip()  # "**2**" is markdown bold
    if not tail:
        return False
    if (tail.count("$") - tail.count("\\$")) % 2 == 1 and tail[-1] not in ".!?":
        return True  # an unclosed math span ("$18.90." is a price: a sentence that ended)
    if tail.count("\\(") > tail.count("\\)") or tail.count("\\[") > tail.count("\\]"):
        return True
    if tail[-1] in _DANGLING_CHARS:
        return True
    word = _LAST_WORD_RE.search(tail[-24:])
    return word is not None and word.group(0).lower() in _DANGLING_WORDS


def classify(ex: Extraction, text: str, finish_reason: str | None, has_stated: bool) -> str:
    """The format class of a response (`text` is the whole response, think block included)."""
    if is_repetitive(text) or (finish_reason == "length" and looped_then_degenerated(text)):
        return "repetition"
    if finish_reason == "length" or ex.unclosed_box or ex.unclosed_think or looks_cut(ex.final_text):
        return "truncated"
    if ex.strict is not None:
        return "boxed" if ex.strict.strip() else "empty_box"
    return "unboxed" if has_stated else "no_answer"
