"""The paper's training reward (`--reward paper`), written from reading the scorer its code applies.

The 1-shot RLVR code (a verl fork) scores its `deepscaler` training data with DeepScaleR's
math scorer. What that scorer does, and so what this module does:

1. the answer is the content of the **last** `\\boxed{...}` of the response, found by the text
   `\\boxed` followed at once by `{` and closed by its matching brace. No box, a last box that
   is never closed (a cut-off response), `\\boxed {x}` with a space or `\\fbox{x}`: reward 0.
   Nothing else is read (no "the answer is", no last number) and the finish reason is ignored:
   a closed last box counts even if the response went on and was cut off.
2. a gold that itself contains `\\boxed` is replaced by its last box's content.
3. reward 1 when the two agree **either** as strings after Hendrycks' MATH normalisation
   ("mathd": `\\dfrac`→`\\frac`, `\\left`/`\\right`, degrees, `\\$`, `\\%`, units written as
   `\\text{ unit}`, a short `x =` prefix, spaces, `\\frac12`, `a/b`, `0.5`) **or** by value
   after a second normalisation ("sympy": `\\text{}`, `$`, `%`, unit words, `million`,
   braces, case, integral floats) with the scorer's guards: an integer gold needs an integer
   answer, two plain fractions must be written the same (unreduced `8/6` ≠ `4/3`), tuples
   compare element by element with the same brackets, and expressions with more than two
   unknown letters or large exponents are not evaluated.

The scorer in the paper's repository as stored is called with `use_think=True`, which gives 0 to
any response without `<think>…</think>`; Qwen2.5-Math never writes that block, so a run with the
gate has no reward at all. This module has no gate (docs/gpu.md gives the evidence).

Where this differs from the scorer: the value comparison is rlvr's bounded reader
(`rlvr.grading.value.numeric_equal`: exact rationals, 1e-11 relative otherwise, free variables
at fixed points) instead of `sympy.simplify(a - b) == 0`, so no answer can hang a step.
"""

from __future__ import annotations

import re

from rlvr.grading.normalize import group_end

__all__ = ["last_box", "mathd_normalize", "paper_correct", "value_normalize"]

MAX_ANSWER_CHARS = 1000  # a longer box is compared as a string only


def last_box(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, or None when it is missing or never closed."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = start + len("\\boxed")
    if text[i:i + 1] != "{":
        return None
    end = group_end(text, i)
    return None if end is None else text[i + 1:end]


# --- the string comparison ("mathd") ---------------------------------------------------------

class _Give(Exception):
    """A step of the normalisation does not apply: the answer is compared as written."""


def mathd_normalize(answer: str) -> str:
    """Hendrycks' normalisation; where one of its steps fails, the stripped answer itself."""
    answer = answer.strip()
    m = re.search(r"^\\text\{(?P<text>.+?)\}$", answer)
    if m is not None:
        answer = m.group("text").strip()
    try:
        return _hendrycks(answer)
    except _Give:
        return answer


def _hendrycks(s: str) -> str:
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "")
    if "\\text{ " in s:  # a unit written after the value
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise _Give
        s = parts[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _braced_sqrt(s).replace(" ", "")
    s = _braced_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_fraction(s)


def _braced_sqrt(s: str) -> str:
    pieces = s.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise _Give
        out += "\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:])
    return out


def _braced_fracs(s: str) -> str:
    pieces = s.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if not piece:
            raise _Give
        if piece[0] == "{":
            out += piece
        elif len(piece) < 2:
            return s  # `\frac1` alone: left as written
        elif piece[1] != "{":
            out += "{" + piece[0] + "}{" + piece[1] + "}" + piece[2:]
        else:
            out += "{" + piece[0] + "}" + piece[1:]
    return out


def _slash_fraction(s: str) -> str:
    parts = s.split("/")
    if len(parts) == 2 and re.fullmatch(r"-?\d+", parts[0]) and re.fullmatch(r"-?\d+", parts[1]):
        a, b = int(parts[0]), int(parts[1])
        if s == f"{a}/{b}":
            return f"\\frac{{{a}}}{{{b}}}"
    return s


# --- the value comparison ("sympy") ----------------------------------------------------------

_UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day",
          "week", "month", "year", "foot", "feet", "inch", "yard")
_COMMA = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
_PLAIN_FRACTION = re.compile(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$")
_BRACKETS = "()[]"


def _integral(text: str) -> bool:
    try:
        x = float(_drop_thousands(text))
        return abs(x - round(x)) <= 1e-7
    except (ValueError, OverflowError):
        return False


def _drop_thousands(text: str) -> str:
    while True:
        shorter = _COMMA.sub(r"\1\3\4", text)
        if shorter == text:
            return text
        text = shorter


def _latex_to_text(s: str) -> str:
    """The few LaTeX forms the scorer's LaTeX-to-text step turns into plain arithmetic."""
    s = s.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    for _ in range(8):  # nested fractions, innermost first
        new = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", lambda m: _ratio(m[1], m[2]), s)
        new = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", new)
        if new == s:
            break
        s = new
    for latex, text in (("\\left", ""), ("\\right", ""), ("\\pi", "pi"), ("\\cdot", "*"),
                        ("\\times", "*"), ("\\infty", "inf")):
        s = s.replace(latex, text)
    return s.strip()


def _ratio(a: str, b: str) -> str:
    def wrap(x: str) -> str:
        return x if re.fullmatch(r"\s*-?[\w.]+\s*", x) else f"({x})"
    return f"{wrap(a).strip()}/{wrap(b).strip()}"


def value_normalize(expr: str) -> str:
    """The scorer's second normalisation, before the value comparison."""
    m = re.search(r"^\\text\{(?P<text>.+?)\}$", expr)
    if m is not None:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    for word, power in (("million", 6), ("billion", 9), ("trillion", 12)):
        expr = expr.replace(word, f"*10^{power}")
    for unit in _UNITS:
        expr = re.sub(f"{unit}(es)?(s)? *(\\^[0-9]+)?", "", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if len(expr) > 0 and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    try:
        if abs(float(expr) - round(float(expr))) <= 1e-7:
            expr = str(int(round(float(expr))))
    except (ValueError, OverflowError):
        pass
    if "\\" in expr:
        expr = _latex_to_text(expr)
    expr = re.sub(r"- *", "-", expr)
    expr = re.sub(r"([0-9]) +([0-9])", r"\1+\2", expr)  # 7 3/4 is 7 + 3/4
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _integral(expr):
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def _elements(expr: str) -> list[str]:
    expr = _drop_thousands(expr)
    if not expr:
        return []
    if (len(expr) > 2 and expr[0] in _BRACKETS and expr[-1] in _BRACKETS
            and not any(ch in expr[1:-1] for ch in _BRACKETS)):
        return [e.strip() for e in expr[1:-1].split(",")]
    return [expr]


def _may_evaluate(expr: str) -> bool:
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    return (len(letters) <= 2 and "^{" not in expr and "^(" not in expr
            and re.search(r"\^[0-9]+\^|\^[0-9][0-9]+", expr) is None)


def _same_value(gold: str, answer: str) -> bool:
    from rlvr.grading.value import numeric_equal

    if not _may_evaluate(f"({gold})-({answer})"):
        return False
    return numeric_equal(answer.replace("**", "^"), gold.replace("**", "^")) is True


def _value_equal(answer: str, gold: str) -> bool:
    if len(answer) > MAX_ANSWER_CHARS:
        return False
    g, a = value_normalize(gold), value_normalize(answer)
    if g == a:
        return True
    if not a:
        return False
    golds, answers = _elements(g), _elements(a)
    if len(golds) > 1 and (g[0] != a[0] or g[-1] != a[-1]):
        return False
    if len(golds) != len(answers):
        return False
    for ge, ae in zip(golds, answers, strict=True):
        if _PLAIN_FRACTION.search(ge) and _PLAIN_FRACTION.search(ae):
            ok = ge == ae  # an unreduced fraction is not the reduced gold
        elif _integral(ge) != _integral(ae):
            ok = False  # an integer gold needs an integer answer
        else:
            ok = _same_value(ge, ae)
        if not ok:
            return False
    return True


def paper_correct(response: str, gold: str) -> tuple[bool, str | None]:
    """(the paper's reward says correct, the answer it read) for one response."""
    if "\\boxed" in gold:
        gold = last_box(gold)
        if gold is None:
            return False, None
    answer = last_box(response)
    if answer is None:
        return False, None
    if mathd_normalize(answer) == mathd_normalize(gold):
        return True, answer
    return _value_equal(answer, gold), answer
