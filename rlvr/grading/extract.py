"""Find the final answer in a response: strict (the last box) and lenient (boxed or stated).

Every scan here is linear in the response length and touches only bounded slices, so a 1 MB
response or 10,000 nested braces costs milliseconds. See docs/grading.md for the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rlvr.grading.stated import (
    RETRACTION_RE,
    clean_stated,
    correction_after,
    join_display,
    last_value,
    stated_answer,
)

MAX_ANSWER_CHARS = 2_000  # a box longer than this is not a final answer we try to read
LENIENT_WINDOW = 20_000  # stated answers are looked for in this many final characters
BOX_WINDOW = 100_000  # boxes are looked for in this many final characters
MAX_GROUP = 64  # most boxes that can form one boxed list answer
LOOP_WINDOW = 400  # "No wait, <value>" retractions are counted in this many final characters

# A retraction followed at once by a new value ("No wait, 8", "wait, no: $\\boxed{6}$").
_RETRACTED_VALUE_RE = re.compile(RETRACTION_RE.pattern + r"[\s,.:;!]*(?:it'?s\s+|it\s+is\s+)?[-$\\\d]", re.IGNORECASE)
_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Connectors allowed between boxes that together state one list answer: "\boxed{1}, \boxed{2}".
# Connectors between boxes that state one (list or hedged) answer: "\boxed{1}, \boxed{2}",
# "\boxed{13} or maybe \boxed{12.8}", "\boxed{13}? Perhaps \boxed{12.8}", "\[\boxed{a}\] Hmm, or".
_GROUP_GAP_RE = re.compile(
    r"^(?:\s|[,;.?!()$]|\\quad|\\qquad|\\\]|\\\[|\\text\{\s*(?:and|or)\s*\}"
    r"|\b(?:and|or|maybe|perhaps|possibly|hmm|alternatively|either)\b)*$",
    re.IGNORECASE,
)
# An unboxed alternative right after the final box: "\boxed{12.8} or maybe 13".
_HEDGE_AFTER_RE = re.compile(
    r"^\s*(?:\$|\\\)|\\\])?\s*[.,;]?\s*\(?\s*(?:or|and/or)\s+(?:else\s+)?(?:maybe\s+|perhaps\s+|possibly\s+)?"
    r"(?P<alt>(?:\$|\\\(|\\boxed\{)?\s*-?\s*[\d\\][^\n]{0,80})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Box:
    content: str | None  # None when the box is unclosed (the response ends inside it)
    start: int
    end: int  # index just past the closing brace


@dataclass(frozen=True)
class Extraction:
    final_text: str  # the part of the response after any think block
    boxes: tuple[Box, ...]
    unclosed_box: bool
    unclosed_think: bool
    strict: str | None  # content of the last closed box, None if there is none
    group: tuple[str, ...]  # the last box and the boxes adjacent to it (a boxed list)
    correction: str | None  # an explicit unboxed correction stated after the last box
    hedge: str | None  # an alternative offered right after the last box ("or maybe 13")
    stated: str | None  # an unboxed "answer is X" statement (used when there is no box)
    last_value: str | None  # the last stated value (lenient fallback of last resort)
    retractions: int = 0  # "no wait, <value>" near the end (two or more: a loop)


def clean_text(text: object) -> str:
    """A str with lone surrogates replaced (they cannot be encoded and crash logging/JSON)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return _SURROGATE_RE.sub("\ufffd", text)


_END_OF_TURN_RE = re.compile(r"<\|im_end\|>|<\|endoftext\|>|<\|im_start\|>|<\|eot_id\|>|\n\s*(?:Human|User):")


def cut_end_of_turn(text: str) -> str:
    """The response up to its end of turn: a base model often goes on with a new question
    ("\n\nHuman: ...") whose boxes answer something else."""
    m = _END_OF_TURN_RE.search(text)
    return text[: m.start()] if m and text[: m.start()].strip() else text


def split_think(text: str) -> tuple[str, bool]:
    """(text after the last </think>, whether a <think> block is left open)."""
    close = text.rfind("</think>")
    if close >= 0:
        return text[close + len("</think>") :], False
    open_ = text.find("<think>")
    if open_ >= 0:
        return text[:open_], True
    return text, False


def _match_braces(text: str, start: int) -> int:
    """Index just past the brace group opening at text[start] == '{', or -1 if unclosed."""
    depth = 0
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2  # \{ and \} are literal braces in TeX, not groups
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def find_boxes(text: str) -> tuple[list[Box], bool]:
    """All top-level boxes in order, and whether the last one is unclosed.

    Boxes nested inside a box are part of its content; after an unclosed box nothing else can
    be a box, so the scan is linear.
    """
    boxes: list[Box] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return boxes, False
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            end = _match_braces(text, i)
            if end < 0:
                boxes.append(Box(None, m.start(), len(text)))
                return boxes, True
            boxes.append(Box(text[i + 1 : end - 1].strip(), m.start(), end))
            pos = end
        elif i > m.end() or (i < len(text) and text[i].isdigit()):  # "\boxed 5", "\boxed5"
            tok = re.match(r"[^\s$]+", text[i : i + 200])
            content = tok.group(0).rstrip(".,;") if tok else ""
            boxes.append(Box(content, m.start(), i + (tok.end() if tok else 0)))
            pos = boxes[-1].end
        else:
            pos = m.end()


def extract_boxed(text: str) -> list[str]:
    """The contents of every closed top-level \\boxed{}/\\fbox{} after any think block."""
    final, _ = split_think(cut_end_of_turn(clean_text(text)))
    return [b.content for b in find_boxes(final[-BOX_WINDOW:])[0] if b.content is not None]


def last_boxed(text: str) -> str | None:
    """The content of the final box if it is closed and non-empty, else None."""
    final, _ = split_think(cut_end_of_turn(clean_text(text)))
    boxes, unclosed = find_boxes(final[-BOX_WINDOW:])
    if unclosed or not boxes or not boxes[-1].content:
        return None
    return boxes[-1].content


def _box_group(final: str, boxes: list[Box]) -> tuple[str, ...]:
    group = [boxes[-1]]  # built backwards from the last box, at most MAX_GROUP boxes
    for b in reversed(boxes[-MAX_GROUP:-1]):
        gap = final[b.end : group[-1].start]
        if b.content is None or len(gap) > 40 or not _GROUP_GAP_RE.match(gap):
            break
        group.append(b)
    return tuple(b.content or "" for b in reversed(group))


def extract(response: str) -> Extraction:
    text = cut_end_of_turn(clean_text(response))
    final, unclosed_think = split_think(text)
    # The final answer lives at the end: only the last BOX_WINDOW characters are scanned.
    final = final[-BOX_WINDOW:]
    boxes, unclosed_box = find_boxes(final)
    closed = [b for b in boxes if b.content is not None]
    strict = closed[-1].content if closed else None
    if strict is not None and len(strict) > MAX_ANSWER_CHARS:
        strict = strict[:MAX_ANSWER_CHARS]
    group: tuple[str, ...] = ()
    correction = None
    hedge = None
    if closed and not unclosed_box:
        group = _box_group(final, closed)
        after = final[closed[-1].end :]
        correction = correction_after(after[-LENIENT_WINDOW:])
        alt = _HEDGE_AFTER_RE.match(after[:200])
        hedge = None
        if alt:  # "(or possibly 13)": the closing parenthesis is not part of the value
            value = alt.group("alt").replace("\\boxed{", "{")
            value = value.split(")")[0] if "(" not in value else value
            hedge = clean_stated(value) or "?"
    stated = value = None
    if not (closed and strict):
        window = join_display(final[-LENIENT_WINDOW:])
        stated, value = stated_answer(window), last_value(window)
    return Extraction(
        final_text=final,
        boxes=tuple(boxes),
        unclosed_box=unclosed_box,
        unclosed_think=unclosed_think,
        strict=strict,
        group=group,
        correction=correction,
        hedge=hedge,
        stated=stated,
        last_value=value,
        retractions=len(_RETRACTED_VALUE_RE.findall(final[-LOOP_WINDOW:])),
    )
