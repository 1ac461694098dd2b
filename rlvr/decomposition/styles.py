"""Reasoning styles: which way a response went about the problem, for the decomposition.

A classifier maps one response (its text, the grader's format class and the finish reason) to a
style name. Two are shipped, chosen by name (`CLASSIFIERS`):

`organism`  the organism's mode markers (rlvr.organism.modes): `Solve:` and `Think:` are one
            style, `work` (they differ only in format, which the decomposition measures
            separately); a direct `\\boxed{` is `guess`; `Hmm:` (a loop) is `degenerate`.
`generic`   any LLM, from the response text alone: `code` (a code block or program lines),
            `worked` (working beside the final answer), `direct` (little more than the answer).
            A proxy: it does not know a model's modes, it guesses them from the surface
            (tests/test_styles.py checks it against the organism's markers).

For both, a response that looped or was cut by the token limit is `degenerate`, whatever its
marker: it never reached an answer the way its style would have. Every rule reads a bounded
prefix or suffix of the text, so a 20,000-character response costs the same as a short one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rlvr.errors import UserError

__all__ = [
    "CLASSIFIERS",
    "DEGENERATE",
    "STYLES",
    "Classifier",
    "default_classifier",
    "get_classifier",
    "style_of",
    "style_shares",
]

DEGENERATE = "degenerate"
# Style names per classifier, in the order tables list them (`other`: no known marker).
STYLES = {
    "organism": ("work", "guess", "other", DEGENERATE),
    "generic": ("worked", "direct", "code", DEGENERATE),
}
_DEGENERATE_FORMATS = frozenset({"repetition", "truncated"})
_ORGANISM_STYLE = {"work": "work", "unboxed": "work", "guess": "guess", "loop": DEGENERATE}

# (text, grader format, finish reason) -> style
Classifier = Callable[[str, str, str], str]


def _degenerate(fmt: str, finish_reason: str) -> bool:
    return fmt in _DEGENERATE_FORMATS or finish_reason == "length"


def organism_style(text: str, fmt: str, finish_reason: str = "stop") -> str:
    """The organism's mode marker, with work and unboxed working as one style."""
    from rlvr.organism.modes import classify_mode

    if _degenerate(fmt, finish_reason):
        return DEGENERATE
    return _ORGANISM_STYLE.get(classify_mode(text), "other")


_HEAD_CHARS = 4_000  # the generic rules read only the start of a response (and, for code,
_TAIL_CHARS = 4_000  # its end: a program written after long prose still counts)
# A program: a fence tagged as code or as its output (```python, ```py, ```output), or a
# program line (def, import, print(, a range loop). A ```latex or ```markdown fence is not code.
_CODE = re.compile(r"```[ \t]*(?:python3?|py|sage|output)\b|"
                   r"^\s*(?:def |import |from \w+ import |print\(|for \w+ in range\()",
                   re.MULTILINE | re.IGNORECASE)
# Where the final-answer statement starts: the last box or the last "answer" word.
_ANSWER = re.compile(r"\\boxed\{|\banswer\b", re.IGNORECASE)
_STEP = re.compile(r"[=<>]|\d\s*[-+*/×÷^]\s*\d|\\(frac|cdot|times|sqrt)")
_WORDS_FOR_PROSE = 12  # this many words of text beside the answer count as working


def generic_style(text: str, fmt: str, finish_reason: str = "stop") -> str:
    """`code`, `worked` or `direct` from the text alone (`degenerate` as for every classifier).

    Working is anything beside the final-answer statement that shows a step (an equation, an
    operation between numbers, a LaTeX operator) or runs to a dozen words of prose.
    """
    if _degenerate(fmt, finish_reason):
        return DEGENERATE
    head = text[:_HEAD_CHARS]
    if _CODE.search(head) or (len(text) > _HEAD_CHARS and _CODE.search(text[-_TAIL_CHARS:])):
        return "code"
    starts = [m.start() for m in _ANSWER.finditer(head)]
    working = head[:starts[-1]] if starts else head
    if _STEP.search(working) or len(working.split()) >= _WORDS_FOR_PROSE:
        return "worked"
    return "direct"


CLASSIFIERS: dict[str, Classifier] = {"organism": organism_style, "generic": generic_style}


def get_classifier(name: str) -> Classifier:
    try:
        return CLASSIFIERS[name]
    except KeyError:
        raise UserError(f"unknown style classifier {name!r}",
                        f"choose one of {', '.join(CLASSIFIERS)}") from None


def style_of(text: str, fmt: str, finish_reason: str = "stop", *,
             classifier: str = "organism") -> str:
    """The style of one response under the named classifier."""
    return get_classifier(classifier)(text, fmt, finish_reason)


def default_classifier(model_path: str | None) -> str:
    """`organism` for the organism (shipped, built, or a checkpoint trained from one), else
    `generic`. `model_path` is a run's `model.path` ("" is the shipped organism)."""
    from rlvr.data.suites import default_suite_specs

    if model_path is None:
        return "generic"
    # The evaluation already decides "is this the organism" to pick its default suites.
    return "organism" if default_suite_specs(model_path or None) == ["organism"] else "generic"


def style_shares(records, classifier: str) -> dict[str, float]:
    """Share of responses in each style (records: anything with response, format and
    finish_reason); an empty list gives {}."""
    classify = get_classifier(classifier)
    counts: dict[str, int] = {}
    for r in records:
        style = classify(r.response, r.format, r.finish_reason)
        counts[style] = counts.get(style, 0) + 1
    total = sum(counts.values())
    return {style: n / total for style, n in counts.items()} if total else {}
