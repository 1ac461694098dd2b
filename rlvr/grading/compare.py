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

INLINE_SYMBOLIC = False  # True inside a worker process: call Math-Verify directly
MAX_SYMBOLIC_CHARS = 300
MAX_ITEMS = 64
MAX_DEPTH = 12
ROUNDING_REL_TOL = Fraction(1, 200)  # a more precise prediction is within 0.5% of a decimal gold

_LHS_RE = re.compile(
    r"^\s*(?:[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?|\\[A-Za-z]+(?:_\{?\w+\}?)?)\s*(?:=|\\in(?![A-Za-z]))\s*([^=]+)$"
)
_LETTER_RE = re.compile(r"^\(?([A-Ea-e])\)?$")
_CHOICE_VALUE_RE = re.compile(r"^\(([A-E])\)\s*(\S.*)$")
_PRED_LETTER_RE = re.compile(r"^\(?([A-E])\)?(?:[\s:.]|$)")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_MATRIX_RE = re.compile(
    r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[lcr|\s]*\})?(.*)\\end\{\1\}$", re.DOTALL
)
_IRRATIONAL_RE = re.compile(r"\\(?:sqrt|pi|log|ln|sin|cos|tan|exp)|\be\^|\\mathrm\{e\}")
_UNSAFE_RE = re.compile(r"\*\*|__|['\"`;]|\d{60,}|\d{4,}\s*!|\^\s*\{?\s*\d{5,}")
_RELATION_RE = re.compile(r"[<>]|\\[lg]eq?(?![a-z])|\\[lg]t(?![a-z])|\\[lg]eqslant")
_COMBINATORIAL_RE = re.compile(r"\\(?:binom|prod|sum|choose)(?![A-Za-z])|!")
_OPEN, _CLOSE = "([{", ")]}"


@dataclass
class Context:
    deadline: float  # time.monotonic() value
    method: str = "form"
    timed_out: bool = False
    gold_percent: bool = False
    depth: int = 0  # nesting of structures being compared (bounded by MAX_DEPTH)
    pred_percent: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    equal: bool
    reason: str
    timed_out: bool = False


def split_top(s: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside any bracket (mismatched interval brackets count as pairs)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(s[start:i].strip())
            start = i + 1
    parts.append(s[start:].strip())
    return [p for p in parts if p]


def _wrapped(s: str) -> bool:
    """True if s[0] opens a bracket that closes exactly at s[-1]."""
    depth = 0
    for i, c in enumerate(s):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def structure(s: str) -> tuple[str, object]:
    if parse_number(s) is not None:  # "10,080" is one number, not a list
        return "atom", s
    if s.startswith(("[\\begin{array}", "(\\begin{array}")) and s.endswith(("]", ")")):
        s = s[1:-1].strip()  # "\left[\begin{array}{cc}...\end{array}\right]"
    m = _MATRIX_RE.match(s)
    if m:
        rows = [split_top(r, "&") for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        return "matrix", rows
    if "\\cup" in s:
        parts = [p.strip() for p in s.split("\\cup") if p.strip()]
        if len(parts) > 1:
            return "union", parts
    if s.startswith("\\{") and s.endswith("\\}"):
        return "set", split_top(s[2:-2])
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _wrapped(s):
        items = split_top(s[1:-1])
        if len(items) >= 2:
            return "tuple", (s[0], s[-1], items)
        if s[0] + s[-1] == "()" and items:
            return structure(items[0])
    items = split_top(s)
    if len(items) >= 2:
        return "list", items
    return "atom", s


def expand_pm(items: list[str]) -> list[str]:
    out = []
    for item in items:
        if item.count("\\pm") == 1 and item.count("\\mp") == 0:
            a, b = (x.strip() for x in item.split("\\pm"))
            out.extend([f"{a}+{b}", f"{a}-{b}"] if a else [b, f"-{b}"])
        else:
            out.append(item)
    return out


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


def _vector(kind: str, value: object) -> list[str] | None:
    """A one-row or one-column matrix, or a parenthesised tuple, as a flat list."""
    if kind == "matrix":
        rows = value
        if all(len(r) == 1 for r in rows):
            return [r[0] for r in rows]
        return rows[0] if len(rows) == 1 else None
    if kind == "tuple" and value[0] + value[1] in ("()", "[]"):
        return value[2]
    return None


def _eq(p: str, g: str, ctx: Context) -> bool:
    if canonical(p) == canonical(g):
        return True
    ctx.depth += 1
    try:
        return ctx.depth <= MAX_DEPTH and _eq_inner(p, g, ctx)
    finally:
        ctx.depth -= 1


def _eq_inner(p: str, g: str, ctx: Context) -> bool:
    p, g = _strip_lhs(p), _strip_lhs(g)
    if "=" in p and "=" not in g and _RELATION_RE.search(p) is None:
        # "\frac{1}{2} = 0.5", "x = 2 + 3 = 5": the value after the last "=" is the answer
        rhs = p.rsplit("=", 1)[1].strip()
        if rhs and _eq(rhs, g, ctx):
            return True
    (pk, pv), (gk, gv) = structure(p), structure(g)
    if gk == "matrix" or pk == "matrix":
        if pk == gk == "matrix":
            return len(pv) == len(gv) and all(_ordered(a, b, ctx) for a, b in zip(pv, gv, strict=True))
        pvec, gvec = _vector(pk, pv), _vector(gk, gv)
        return pvec is not None and gvec is not None and _ordered(pvec, gvec, ctx)
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
    if pk != "atom":
        return False
    return _atom_eq(p, g, ctx)


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
        return bool(m) and m.group(1).upper() == letter.group(1).upper()
    if _WORDS_RE.match(g) and sum(ch.isalpha() for ch in g) >= 3 and "\\" not in g:
        ctx.method = "text"
        return re.sub(r"[^a-z]", "", p.lower()) == re.sub(r"[^a-z]", "", g.lower())
    return _value_eq(p, g, ctx)


def _value_eq(p: str, g: str, ctx: Context) -> bool:
    gn, pn = parse_number(g), parse_number(p)
    if gn is not None and pn is None:
        pn = number_with_unit(p)  # "4.5 \\times 10^{33} \\mathrm{erg\\,s^{-1}}"
    elif pn is not None and gn is None:
        gn = number_with_unit(g)
    if gn is not None and pn is not None:
        ctx.method = "exact number"
        if numbers_equal(pn, gn):
            return True
        if ctx.gold_percent != ctx.pred_percent:  # "0.08" for "8\%", "5\%" for "0.05"
            scale = 100 if ctx.gold_percent else Fraction(1, 100)
            return pn.value * scale == gn.value
        return False
    gb, pb = _BASE_RE.match(g), _BASE_RE.match(p)
    if gb and (pb or _BASE_RE.match(p + "_0") and p.isalnum()):
        ctx.method = "base subscript"
        return (pb.group(1), pb.group(2)) == gb.groups() if pb else p.upper() == gb.group(1).upper()
    if "i" in g and "i" in p:
        gz, pz = parse_complex(g), parse_complex(p)
        if gz is not None and pz is not None:
            ctx.method = "exact complex"
            return gz == pz
    if gn is not None and re.fullmatch(r"[\d\s+\-*/.^{}()\\a-z]*", p) is None:
        ctx.method = "exact number"
        return False  # a rational gold and a prediction with words or symbols in it
    if pn is not None and pn.quantum is not None and _IRRATIONAL_RE.search(g):
        ctx.method = "approximation"
        return False
    return _symbolic(p, g, ctx)


def answers_equal_ctx(pred: str, gold: str, ctx: Context) -> bool:
    """Equality of two answer strings (already extracted); never raises for str input."""
    pc, gc = clean(pred), clean(gold)
    if not pc.text or not gc.text:
        return False
    ctx.pred_percent, ctx.gold_percent = pc.percent, gc.percent
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
