"""Is a predicted answer equal to the gold? Structure first, exact numbers next, sympy last.

Order of decisions (the first that decides wins):
1. the same written form after clean-up (`canonical`);
2. structure: matrices, tuples/intervals (order and brackets matter), sets and bare lists
   (order does not), unions of intervals, `\\pm` expanded into two answers;
3. atoms: multiple-choice letters, words, exact rationals (`Fraction`), complex a+bi,
   base subscripts; a decimal never equals an exact irrational (approximations are wrong);
4. Math-Verify in a worker process with a deadline (`deadline.py`), for what is left.
Inputs that could make sympy hang or blow up (nested or huge exponents, huge factorials,
long strings, `**`) are refused before step 4 and graded by steps 1-3 only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from rlvr.grading.deadline import DeadlineExceeded, WorkerFailed, symbolic_pool
from rlvr.grading.normalize import (
    APPROX_RE,
    Number,
    canonical,
    clean,
    number_with_unit,
    parse_complex,
    parse_number,
)
from rlvr.grading.sets import looks_like_set, read_set, sets_equal
from rlvr.grading.structure import expand_pm, expand_tuple_pm, split_top, structure, vector
from rlvr.grading.value import numeric_equal, proportional, value_of
from rlvr.grading.words import word_class, word_number

INLINE_SYMBOLIC = False  # True inside a worker process: call Math-Verify directly
MAX_SYMBOLIC_CHARS = 300
MAX_ITEMS = 64
MAX_DEPTH = 12
ROUNDING_REL_TOL = Fraction(1, 200)  # a more precise prediction is within 0.5% of a decimal gold

_LHS_RE = re.compile(
    r"^\s*(?:[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?|\\[A-Za-z]+(?:_\{?\w+\}?)?)\s*(?:=|\\in(?![A-Za-z])|\\equiv(?![A-Za-z]))\s*([^=]+)$"
)
_LETTER_RE = re.compile(r"^\(?([A-Ea-e])\)?$")
_CHOICE_VALUE_RE = re.compile(r"^\(([A-E])\)\s*(\S.*)$")
_PRED_CHOICE_VALUE_RE = re.compile(r"^(?:\(([A-E])\)\s*|([A-E])[.:]\s+)(\S.*)$")
_PRED_LETTER_RE = re.compile(r"^\(?([A-E])\)?(?:[\s:.]|$)")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
_BASE_RE = re.compile(r"^\(?([0-9A-Za-z]+)\)?_\{?\(?(\d+)\)?\}?$")
_IRRATIONAL_RE = re.compile(r"\\(?:sqrt|pi|log|ln|sin|cos|tan|exp)|\be\^|\\mathrm\{e\}")
_UNSAFE_RE = re.compile(r"\*\*|__|['\"`;]|\d{60,}|\d{4,}\s*!|\^\s*\{?\s*\d{5,}")
_RELATION_RE = re.compile(r"[<>]|\\[lg]eq?(?![a-z])|\\[lg]t(?![a-z])|\\[lg]eqslant")
_COMBINATORIAL_RE = re.compile(r"\\(?:binom|prod|sum|choose)(?![A-Za-z])|!")


@dataclass
class Context:
    deadline: float  # time.monotonic() value
    method: str = "form"
    timed_out: bool = False
    gold_percent: bool = False
    depth: int = 0  # nesting of structures being compared (bounded by MAX_DEPTH)
    pred_percent: bool = False
    pred_degree: bool = False
    gold_degree: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    equal: bool
    reason: str
    timed_out: bool = False


def _strip_lhs(s: str) -> str:
    m = _LHS_RE.match(s)
    return m.group(1).strip() if m else s


def _round_to(x: Fraction, quantum: Fraction) -> Fraction:
    steps = abs(x) / quantum
    rounded = math.floor(steps + Fraction(1, 2)) * quantum
    return rounded if x >= 0 else -rounded


def numbers_equal(pred: Number, gold: Number) -> bool:
    """Exact equality, except that a more precise prediction may round to a decimal gold."""
    if pred.value == gold.value:
        return True
    if gold.quantum is None:
        return False
    if pred.quantum is not None and pred.quantum >= gold.quantum:
        return False  # as coarse as the gold and different: a different (or rounded) value
    if abs(pred.value - gold.value) > abs(gold.value) * ROUNDING_REL_TOL:
        return False  # rounds to the gold only because the gold is coarse (0.49 for 0.5)
    return _round_to(pred.value, gold.quantum) == gold.value


def unsafe_reason(s: str) -> str | None:
    """Why s must not reach sympy (hang, memory blow-up, code-like text), or None."""
    if len(s) > MAX_SYMBOLIC_CHARS:
        return "answer too long for symbolic comparison"
    if _UNSAFE_RE.search(s):
        return "refused: code-like text or an oversized number/exponent"
    depth = max_depth = 0
    for c in s:
        depth += (c == "{") - (c == "}")
        max_depth = max(max_depth, depth)
    if max_depth > 12:
        return "refused: nesting too deep"
    if _COMBINATORIAL_RE.search(s) and re.search(r"\d{5,}|10\s*\^", s):
        return "refused: large combinatorial expression"
    for m in re.finditer(r"\^", s):
        exponent = s[m.end() : m.end() + 80]
        if exponent.startswith("{") and "^" in exponent.split("}")[0]:
            return "refused: nested exponent"
    return None


def symbolic_equal(pred: str, gold: str) -> bool | None:
    """Math-Verify on boxed strings, its own (signal) timeouts off: run only in a worker."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]  # never ExprExtractionConfig: sympy's parse_expr evals
    g = parse("\\boxed{" + gold + "}", extraction_config=config, parsing_timeout=None)
    p = parse("\\boxed{" + pred + "}", extraction_config=config, parsing_timeout=None)
    if not g or not p:
        return None
    # allow_set_relation_comp: "x \le 0" may answer "(-\infty, 0]" (Math-Verify's own default
    # allows it only when the prediction is the set).
    return bool(verify(g, p, timeout_seconds=None, allow_set_relation_comp=True))


def _symbolic(pred: str, gold: str, ctx: Context) -> bool:
    import time

    for s in (pred, gold):
        why = unsafe_reason(s)
        if why:
            ctx.notes.append(why)
            return False
    ctx.method = "symbolic"
    if INLINE_SYMBOLIC:
        return bool(symbolic_equal(pred, gold))
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        ctx.timed_out = True
        return False
    try:
        reply = symbolic_pool().call({"op": "equal", "pred": pred, "gold": gold}, remaining)
    except DeadlineExceeded:
        ctx.timed_out = True
        return False
    except WorkerFailed:
        ctx.notes.append("symbolic worker failed")
        return False
    return bool(reply.get("equal"))


def _unordered(preds: list[str], golds: list[str], ctx: Context) -> bool:
    preds = list(dict.fromkeys(preds))
    golds = list(dict.fromkeys(golds))
    if len(preds) != len(golds) or len(golds) > MAX_ITEMS:
        return False
    left = list(preds)
    for g in golds:
        hit = next((i for i, p in enumerate(left) if _eq(p, g, ctx)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


def _ordered(preds: list[str], golds: list[str], ctx: Context) -> bool:
    return len(preds) == len(golds) <= MAX_ITEMS and all(
        _eq(p, g, ctx) for p, g in zip(preds, golds, strict=True)
    )


def _eq(p: str, g: str, ctx: Context) -> bool:
    if canonical(p) == canonical(g):
        return True
    ctx.depth += 1
    try:
        return ctx.depth <= MAX_DEPTH and _eq_inner(p, g, ctx)
    finally:
        ctx.depth -= 1


def _eq_inner(p: str, g: str, ctx: Context) -> bool:
    decided = _equation_eq(p, g, ctx)
    if decided is None and (looks_like_set(p) or looks_like_set(g)):
        ps, gs = read_set(p), read_set(g)
        if ps is not None and gs is not None:  # "x<2 or x>3" for "(-\infty,2)\cup(3,\infty)"
            ctx.method = "same set"
            decided = sets_equal(ps, gs)
    if decided is not None:
        return decided
    p, g = _strip_lhs(p), _strip_lhs(g)
    if "=" in p and "=" not in g and _RELATION_RE.search(p) is None and len(split_top(p)) == 1:
        # "\frac{1}{2} = 0.5", "x = 2 + 3 = 5": the value after the last "=" is the answer
        rhs = p.rsplit("=", 1)[1].strip()
        if rhs and _eq(rhs, g, ctx):
            return True
    (pk, pv), (gk, gv) = structure(p), structure(g)
    if gk == "matrix" or pk == "matrix":
        if pk == gk == "matrix":
            return len(pv) == len(gv) and all(_ordered(a, b, ctx) for a, b in zip(pv, gv, strict=True))
        pvec, gvec = vector(pk, pv), vector(gk, gv)
        return pvec is not None and gvec is not None and _ordered(pvec, gvec, ctx)
    if "named" in (pk, gk):
        return _named_eq((pk, pv), (gk, gv), ctx)
    pm = (expand_tuple_pm(pv) if pk == "tuple" else None, expand_tuple_pm(gv) if gk == "tuple" else None)
    if pm != (None, None):  # "(\pm3, \pm2)": the four tuples it stands for
        return _unordered(pm[0] or (pv if pk == "list" else [p]), pm[1] or (gv if gk == "list" else [g]), ctx)
    if gk == "tuple":
        if pk == "atom" and _RELATION_RE.search(p):  # "x \le 0" for "(-\infty, 0]"
            return _symbolic(p, g, ctx)
        return pk == "tuple" and pv[:2] == gv[:2] and _ordered(pv[2], gv[2], ctx)
    if gk == "union":
        return pk == "union" and _unordered(pv, gv, ctx)
    golds = expand_pm(gv if gk in ("set", "list") else [g])
    if gk in ("set", "list") or golds != [g]:
        if pk in ("set", "list"):
            return _unordered(expand_pm(pv), golds, ctx)
        if pk == "tuple" and pv[:2] == ("(", ")") and gk == "list":
            return _unordered(pv[2], golds, ctx)  # "(-2, 1)" for the solutions "-2, 1"
        return _unordered(expand_pm([p]), golds, ctx)
    if pk == "set" and len(pv) == 1:  # a one-element solution set "\{2\}" for "2"
        return _eq(pv[0], g, ctx)
    if pk != "atom":
        return False
    return _atom_eq(p, g, ctx)


def _equation_eq(p: str, g: str, ctx: Context) -> bool | None:
    """Two equations (`3x-y=2`, `y=3x-2`) are equal when one is a nonzero multiple of the other
    after moving every term to one side; `x = 5` against `y = 5` is left to the value rules."""
    if p.count("=") != 1 or g.count("=") != 1 or _RELATION_RE.search(p) or _RELATION_RE.search(g):
        return None
    if _LHS_RE.match(p) and _LHS_RE.match(g) or "," in p + g:
        return None
    verdict = proportional(tuple(p.split("=")), tuple(g.split("=")))
    if verdict is not None:
        ctx.method = "same equation"
    return verdict


def _named_eq(pred: tuple[str, object], gold: tuple[str, object], ctx: Context) -> bool:
    """Named values (`p=6, q=31, r=-1`) against a tuple, a list or other named values."""
    (pk, pv), (gk, gv) = pred, gold
    if pk == gk == "named":
        if sorted(pv[0]) == sorted(gv[0]):  # the same names: compare by name
            by_name = dict(zip(*pv, strict=True))
            return _ordered([by_name[n] for n in gv[0]], gv[1], ctx)
        return _ordered(pv[1], gv[1], ctx)
    named, other, kind = (pv, gv, gk) if pk == "named" else (gv, pv, pk)
    if kind == "tuple" and other[0] + other[1] == "()":
        return _ordered(named[1], other[2], ctx) if pk == "named" else _ordered(other[2], named[1], ctx)
    if kind in ("list", "set"):
        return _unordered(named[1], other, ctx) if pk == "named" else _unordered(other, named[1], ctx)
    return False


def _atom_eq(p: str, g: str, ctx: Context) -> bool:
    p, g = _strip_lhs(p), _strip_lhs(g)
    if canonical(p) == canonical(g):
        return True
    choice = _CHOICE_VALUE_RE.match(g)
    if choice:  # AMC-style "\textbf{(A) }2": the letter or the value
        ctx.method = "choice letter"
        m = _PRED_LETTER_RE.match(p)
        if m:
            return m.group(1) == choice.group(1)
        return _eq(p, choice.group(2), ctx)
    letter = _LETTER_RE.match(g)
    if letter and len(g) <= 3:
        ctx.method = "choice letter"
        m = _PRED_LETTER_RE.match(p) or _LETTER_RE.match(p)  # "C", "(C) 12", "c"
        if m or g != "e":  # a lone lower-case "e" may be Euler's number ("e^1")
            return bool(m) and m.group(1).upper() == letter.group(1).upper()
    choice = _PRED_CHOICE_VALUE_RE.match(p)
    if choice:  # "\textbf{(D) } 901" or "D. 901" for the value 901: the value is the answer
        return _eq(choice.group(3), g, ctx)
    words = _word_eq(p, g, ctx)
    if words is not None:
        return words
    return _value_eq(p, g, ctx)


def _word_eq(p: str, g: str, ctx: Context) -> bool | None:
    """Word answers: the same words, one meaning in other words ("DNE", "does not exist"),
    or a number in words ("ten", "five sixths") against its value."""
    gw = _WORDS_RE.match(g) and sum(ch.isalpha() for ch in g) >= 2 and "\\" not in g
    pw = _WORDS_RE.match(p) and sum(ch.isalpha() for ch in p) >= 2 and "\\" not in p
    if not (gw or pw):
        return None
    ctx.method = "text"
    pc, gc = word_class(p), word_class(g)
    if pc is not None or gc is not None:
        return pc == gc
    pn, gn = word_number(p) if pw else None, word_number(g) if gw else None
    if pn is not None or gn is not None:
        ctx.method = "number in words"
        return _eq(str(pn) if pn is not None else p, str(gn) if gn is not None else g, ctx)
    if gw and sum(ch.isalpha() for ch in g) >= 3:
        return re.sub(r"[^a-z]", "", p.lower()) == re.sub(r"[^a-z]", "", g.lower())
    return None


def _value_eq(p: str, g: str, ctx: Context) -> bool:
    if ctx.pred_degree != ctx.gold_degree:
        angle = _angle_eq(p, g, ctx)
        if angle is not None:
            return angle
    gn, pn = parse_number(g), parse_number(p)
    if gn is not None and pn is None:
        pn = number_with_unit(p)  # "4.5 \\times 10^{33} \\mathrm{erg\\,s^{-1}}"
    elif pn is not None and gn is None:
        gn = number_with_unit(g)
    if gn is not None and pn is not None:
        ctx.method = "exact number"
        return _percent_eq(pn, gn, ctx)
    gb, pb = _BASE_RE.match(g), _BASE_RE.match(p)
    if gb and (pb or _BASE_RE.match(p + "_0") and p.isalnum()):
        ctx.method = "base subscript"
        return (pb.group(1), pb.group(2)) == gb.groups() if pb else p.upper() == gb.group(1).upper()
    if "i" in g and "i" in p:
        gz, pz = parse_complex(g), parse_complex(p)
        if gz is not None and pz is not None:
            ctx.method = "exact complex"
            return gz == pz
    if pn is not None and pn.quantum is not None and (_IRRATIONAL_RE.search(g) or _irrational(g)):
        ctx.method = "approximation"
        return False
    by_value = numeric_equal(p, g)  # unevaluated arithmetic, other forms, code-style golds
    if by_value is not None:
        ctx.method = "value"
        return by_value
    if gn is not None and re.fullmatch(r"[\d\s+\-*/.^{}()\\a-z]*", p) is None:
        ctx.method = "exact number"
        return False  # a rational gold and a prediction with words or symbols in it
    return _symbolic(p, g, ctx)


def _irrational(g: str) -> bool:
    v = value_of(g)
    return v is not None and not isinstance(v, Fraction)


def _percent_eq(pn: Number, gn: Number, ctx: Context) -> bool:
    """A percent sign on one side only: `8` for `8\\%` (the sign left out) when the number is
    above 1, and `0.08` or `\\frac12` for a gold `8\\%`/`50\\%`; but `25\\%` does not answer
    `0.25`, nor `\\frac12\\%` (half a percent) `\\frac12`."""
    if ctx.gold_percent == ctx.pred_percent:
        return numbers_equal(pn, gn)
    if numbers_equal(pn, gn):
        return abs(gn.value) > 1
    return ctx.gold_percent and pn.value * 100 == gn.value


def _angle_eq(p: str, g: str, ctx: Context) -> bool | None:
    """`90^\\circ` against `\\frac{\\pi}{2}`: degrees are converted when the other side is
    written with pi (a bare `90` against `\\frac{\\pi}{2}` is not an angle statement)."""
    degrees, radians = (p, g) if ctx.pred_degree else (g, p)
    if "\\pi" not in radians and "pi" not in radians:
        return None
    verdict = numeric_equal(f"({degrees})\\cdot\\frac{{\\pi}}{{180}}", radians)
    if verdict is not None:
        ctx.method = "angle units"
    return verdict


def answers_equal_ctx(pred: str, gold: str, ctx: Context) -> bool:
    """Equality of two answer strings (already extracted); never raises for str input."""
    pc, gc = clean(pred), clean(gold)
    if not pc.text or not gc.text:
        return False
    ctx.pred_percent, ctx.gold_percent = pc.percent, gc.percent
    ctx.pred_degree, ctx.gold_degree = pc.degree, gc.degree
    if pc.percent != gc.percent:  # the percent sign changes the value: "25\%" is not "0.25"
        pn, gn = parse_number(pc.text), parse_number(gc.text)
        if pn is not None and gn is not None:
            ctx.method = "exact number"
            return _percent_eq(pn, gn, ctx)
    if APPROX_RE.search(pc.text):
        # "\frac{14}{3} \approx 4.67": the exact value is the answer, the decimal a note (so
        # "12.8 \approx 13" is not two chances); "x \approx 4.67" states the decimal.
        left, right = (x.strip() for x in APPROX_RE.split(pc.text, maxsplit=1))
        answer = right if re.fullmatch(r"[A-Za-z](?:_\{?\w+\}?)?", left) else left
        lnum, rnum = parse_number(left), parse_number(right)
        if lnum and rnum and not (numbers_equal(lnum, rnum) or numbers_equal(rnum, lnum)):
            ctx.notes.append("two different values joined by \\approx (a hedge)")
            return False
        return bool(answer) and _eq(answer, gc.text, ctx)
    return _eq(pc.text, gc.text, ctx)
