"""Answers stated without a box: "the answer is X", the last stated value, corrections.

Used by the lenient extraction (`extract.py`). Every pattern reads bounded slices of the final
characters of a response and is linear. Rules and their reasons: docs/grading.md.
"""

from __future__ import annotations

import re


def answer_like(value: str) -> bool:
    """A short value, not prose: no word of three or more letters outside LaTeX commands."""
    return len(value) <= 100 and re.search(r"(?<![\\A-Za-z])[A-Za-z]{3,}", value) is None


# A lookahead, so the match consumes only the lead and a later statement on the same line
# ("The answer is 6. Actually no. The answer is 5.") is found too.
_VALUE = r"(?=(?P<v>[^\n]{1,300}))"
_STATED_RES = [
    # "Final Answer: The final answer is $42$. I hope it is correct." (Minerva style) and
    # "the (final) answer is X", "answer: X", "**Answer: even**"
    re.compile(
        r"(?:final\s+answer|the\s+answer|answers?|correct\s+(?:option|choice))\s*(?:\*\*)?\s*"
        r"(?:is|are|:|=|would\s+be|will\s+be)"
        r"\s*(?:\*\*)?\s*:?\s*" + _VALUE,
        re.IGNORECASE,
    ),
]
_FILLER_RE = re.compile(
    r"^(?:indeed|still|actually|clearly|simply|just|definitely|therefore|then|thus|now|option|choice)\s+",
    re.IGNORECASE,
)
_LEAD_RE = re.compile(r"\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)
_CORRECTION_CUE_RE = re.compile(
    r"\b(?:wait|actually|however|correction|mistake|error|instead|re-?check\w*|recalculat\w*|"
    r"made an? \w+ (?:error|mistake))\b",
    re.IGNORECASE,
)
_CORRECTION_RE = re.compile(
    r"(?:correct\s+(?:final\s+)?answer\s+(?:is|should\s+be)|answer\s+(?:is|should\s+be)\s+actually|"
    r"answer\s+should\s+be|(?:final\s+)?answer\s+is)\s*:?\s*" + _VALUE,
    re.IGNORECASE,
)
_MATH_SPAN_RE = re.compile(
    r"\$\$((?:[^$\\]|\\.){1,300}?)\$\$|(?<!\\)\$((?:[^$\\]|\\.){1,300}?)\$"
    r"|\\\((.{1,300}?)\\\)|\\\[(.{1,300}?)\\\]",
    re.DOTALL,
)
# Display math spread over lines ("The answer is:\n\\[\n5\n\\]") is joined into one line.
_DISPLAY_RE = re.compile(r"\\\[.{0,600}?\\\]|\$\$.{0,600}?\$\$", re.DOTALL)
_NEWLINES_RE = re.compile(r"\s*\n\s*")
_STATES_RE = re.compile(
    r"=|\\approx|\\equiv|≡|\b(?:is|are|was|were|equals?|gives?|get|gets|got|yields?|answer|total|result|"
    r"becomes?|comes? to|makes?)\b",
    re.IGNORECASE,
)
# Self-corrections: "6. No wait, 8." (one retraction: the later value; two or more: a loop).
RETRACTION_RE = re.compile(
    r"\b(?:no,?\s+wait|wait,?\s+no|actually,?\s+no|no,?\s+actually|scratch that)\b", re.IGNORECASE
)
# The verb (or cue) after which a sentence states its answer ("the roots are ...").
_VERB_RE = re.compile(
    r"\b(?:is|are|was|were|be|equals?|gives?|get|got|find|found|obtain|obtained|have|yields?)\b|:", re.IGNORECASE
)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*$\\])")
# A parenthesised aside in prose ("(I checked with 2 methods.)"): not where the answer is.
_ASIDE_RE = re.compile(r"\((?=[^()]*[A-Za-z]{3})[^()$\\]*\)")
_MOD_TAIL_RE = re.compile(r"\s*\(\s*mod\s+\d+\s*\)|\s*\\pmod\{\d+\}")
_ITEM_RE = re.compile(r"^(?:([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*)?(-?[^\s=,][^=,]{0,40})$")
_CONNECTIVE_RE = re.compile(r"^(?:so|thus|therefore|hence|then|and|finally)\b[,\s]*", re.IGNORECASE)
# Items are split at ", " (a tight comma may be a thousands separator: "1,234"), at a tight
# comma before a named value ("x=3,y=4"), and at "and" / "or".
_LIST_SPLIT_RE = re.compile(r",\s+(?:and\s+|or\s+)?|,(?=[A-Za-z]\s*=)|\s+(?:and|or)\s+")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def clean_stated(value: str) -> str | None:
    """Cut a stated answer at the end of its sentence and drop markdown/math delimiters."""
    v = value.strip()
    span = _MATH_SPAN_RE.match(v)
    if span:  # "$42$. I hope it is correct." -> "42"
        v = next(g for g in span.groups() if g is not None)
    else:
        v = re.split(r"(?<!\\)\.(?:\s|$)|\s(?:because|since|which|so|as)\s", v, maxsplit=1)[0]
    v = v.replace("**", "").strip()
    v = _FILLER_RE.sub("", v).strip().strip("$").strip()
    v = re.sub(r"^\\[\[(]|\\[\])]$", "", v).strip()
    v = v.rstrip(".;,:").strip()
    if v and not answer_like(v):  # "that there are 5 ways": prose around one value
        values = _NUMBER_RE.findall(v)
        if len(values) == 1 and not _MATH_SPAN_RE.search(v):
            v = values[0]
    if not v or len(v) > 200 or "\\boxed" in v or "\\fbox" in v:
        return None
    return v


def join_display(text: str) -> str:
    """Display math spread over lines ("The answer is:\\n\\\\[\\n5\\n\\\\]") joined into one line."""
    return _DISPLAY_RE.sub(lambda m: _NEWLINES_RE.sub(" ", m.group(0)), text)


def stated_answer(window: str) -> str | None:
    """The last "the answer is X" statement; after a later "no wait", the value that follows."""
    best: tuple[int, str] | None = None
    for pattern in _STATED_RES:
        for m in pattern.finditer(window):
            if best is None or m.start() >= best[0]:
                best = (m.start(), m.group("v"))
    if best is None:
        return None
    retractions = list(RETRACTION_RE.finditer(window, best[0]))
    if retractions:  # "The answer is 6. No wait, it is 8."
        return last_value(window[retractions[-1].end() :])
    value = best[1]
    for _ in range(3):  # "Final Answer: The final answer is $42$." states the answer twice
        lead = _LEAD_RE.match(value)
        if lead is None:
            break
        value = value[lead.end() :]
    return clean_stated(value)


def correction_after(tail: str) -> str | None:
    """An explicit correction after the last box ("Wait, ... the correct answer is 7.",
    "No wait, it is 7.")."""
    cue = _CORRECTION_CUE_RE.search(tail)
    if cue is None:
        return None
    found = None
    for m in _CORRECTION_RE.finditer(tail, cue.start()):
        found = m.group("v")
    if found:
        return clean_stated(found)
    retraction = RETRACTION_RE.search(tail)
    return last_value(tail[retraction.end() :]) if retraction else None


def _stating_sentence(line: str) -> str | None:
    """The last sentence of a line that states something or is a bare value."""
    line = _MOD_TAIL_RE.sub("", _ASIDE_RE.sub("", line)).strip()
    for sentence in reversed(_SENTENCE_RE.split(line)):
        bare = sentence.strip("$.*# ").strip()
        if bare and (_STATES_RE.search(sentence) or (len(bare) <= 40 and answer_like(bare))):
            return sentence
        if not sentence.rstrip().endswith((".", "!", "?", ")")):
            return None  # an unfinished last sentence ("... = 14. Step 3"): no answer came
    return None


def _stated_list(sentence: str) -> str | None:
    """"the roots are x = 3, x = 5, and x = 7", "x = 3, y = -1": two or more values as one list
    answer (a list with an extra root then differs from the gold's)."""
    verbs = list(_VERB_RE.finditer(sentence))
    rest = sentence[verbs[-1].end() :] if verbs else sentence
    rest = rest.replace("$", "").replace("\\(", "").replace("\\)", "").strip().rstrip(".")
    rest = _CONNECTIVE_RE.sub("", rest)
    items = [i.strip() for i in _LIST_SPLIT_RE.split(rest)]
    valid: list[str] = []
    for item in reversed(items):
        m = _ITEM_RE.match(item)
        if m is None or not answer_like(item):
            break
        valid.insert(0, item)
    named = all("=" in v for v in valid)
    if len(valid) < 2 or (len(valid) < len(items) and not named) or (not verbs and not named):
        return None
    return ", ".join(valid)


def last_value(window: str) -> str | None:
    """The value the last line states: a list of values, RHS of its last '=', its last math
    span or number.

    The line must *state* something (`=`, "is", "are", "equals", "gives", "answer", ...) or be
    a bare value: "The triangle has sides 3, 4, 5" restates data and answers nothing. Within it,
    the last sentence that states something counts ("12 ways. (I checked with 2 methods.)").
    """
    lines = [ln.strip() for ln in window.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = _stating_sentence(lines[-1][-400:])
    if line is None:
        return None
    listed = _stated_list(line)
    if listed is not None:
        return listed
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN_RE.finditer(line)]
    if spans:
        value = spans[-1].split("=")[-1].strip().rstrip(".")
        return value or None
    if "=" in line:
        rhs = line.split("=")[-1].strip().rstrip(".")
        if rhs and len(rhs) < 60 and _NUMBER_RE.fullmatch(rhs.replace(" ", "")):
            return rhs
    verbs = [v for v in _VERB_RE.finditer(line) if v.group(0) != ":"]
    rest = line[verbs[-1].end() :] if verbs else ""
    if rest and not re.search(r"[=+*/^]|\\times|\\cdot|\s-\s", rest):
        # "There are 12 ways to do it in 2 steps": the value right after the verb is stated
        nums = _NUMBER_RE.findall(rest)
        if nums:
            return nums[0].rstrip(",")
    nums = _NUMBER_RE.findall(line)
    return nums[-1].rstrip(",") if nums else None
