r"""Sets of real numbers in any of their notations, compared as sets.

Intervals (`(2,\infty)`, `[a, b)`), unions (`\cup`, "or"), inequalities (`x > 2`, `-1 \le x < 5`,
`x \ne 3`, joined by "or"/"and"), `x \in ...`, `\mathbb{R}`/"all real numbers", the empty set
(`\emptyset`, `\varnothing`, `\{\}`, "no solution") and finite sets `\{1, 2\}` all become one
canonical form: a sorted list of disjoint intervals whose endpoints are values (`value.py`),
adjacent pieces merged. Two notations are equal when their canonical forms are. Anything the
reader does not recognise gives None, and the caller compares the text another way.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from rlvr.grading.structure import split_top
from rlvr.grading.value import Value, closeness, value_of

INF = math.inf

Interval = tuple[Value, bool, Value, bool]  # (low, low closed, high, high closed)

_REALS_RE = re.compile(
    r"^(?:\\mathbb\{?R\}?|\\R|\\Bbb\{?R\}?|\\text\{all real numbers\}|all real numbers|all reals"
    r"|\\text\{all reals\}|\(-\\infty,\s*\+?\\infty\))$",
    re.IGNORECASE,
)
_BUILDER_RE = re.compile(r"^\\\{\s*[A-Za-z]\s*(?:\\mid|\||:)\s*(.+)\\\}$")
_EMPTY_RE = re.compile(
    r"^(?:\\emptyset|\\varnothing|\\\{\s*\\\}|\\text\{(?:no (?:real )?solutions?|none)\}|no (?:real )?solutions?|\{\})$",
    re.IGNORECASE,
)
_MARKER_RE = re.compile(
    r"\\cup|\\cap|\\infty|\\mathbb|\\emptyset|\\varnothing|[<>]|\\[lg]eq?(?![a-z])|\\[lg]t(?![a-z])|\\neq?(?![a-z])"
    r"|\\[lg]eqslant|real|\\\{\s*\\\}|no (?:real )?solution|\\in(?![a-z])|\\R(?![a-z])",
    re.IGNORECASE,
)
_REL_RE = re.compile(r"\\leqslant|\\geqslant|\\leq?(?![a-z])|\\geq?(?![a-z])|\\lt(?![a-z])|\\gt(?![a-z])|\\neq?(?![a-z])|<=|>=|!=|<|>")
_REL = {"<": "<", "\\lt": "<", ">": ">", "\\gt": ">", "\\le": "<=", "\\leq": "<=", "\\leqslant": "<=",
        "<=": "<=", "\\ge": ">=", "\\geq": ">=", "\\geqslant": ">=", ">=": ">=", "\\ne": "!=",
        "\\neq": "!=", "!=": "!="}
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "!=": "!="}
_VAR_RE = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?$")
_OR_RE = re.compile(r"\\text\{\s*or\s*\}|\\vee|\\lor|\bor\b|\\cup|\s+U\s+|\\text\{\s*,\s*\}")
_AND_RE = re.compile(r"\\text\{\s*and\s*\}|\\wedge|\\land|\band\b|\\cap")
_ABS_RE = re.compile(r"^\|\s*[A-Za-z]\s*(?:([+-])\s*([^|]+))?\|$")
_INTERVAL_RE = re.compile(r"^([(\[])(.+),(.+)([)\]])$")


def looks_like_set(s: str) -> bool:
    return _MARKER_RE.search(s) is not None


def _endpoint(s: str) -> Value | None:
    t = s.strip().replace(" ", "")
    if t in ("\\infty", "+\\infty", "\\infty"):
        return INF
    if t == "-\\infty":
        return -INF
    v = value_of(t)
    if v is None or (isinstance(v, complex) and abs(v.imag) > 1e-12):
        return None
    return v if isinstance(v, Fraction) else float(v.real)


def _same(a: Value, b: Value) -> bool | None:
    if math.inf in (abs(a), abs(b)):
        return a == b
    return closeness(a, b)


def _lt(a: Value, b: Value) -> bool:
    return _same(a, b) is False and a < b


def _interval(s: str) -> list[Interval] | None:
    m = _INTERVAL_RE.match(s)
    if m is None or m.group(2).count(",") or m.group(3).count(","):
        return None
    lo, hi = _endpoint(m.group(2)), _endpoint(m.group(3))
    if lo is None or hi is None or not _lt(lo, hi):
        return None
    return [(lo, m.group(1) == "[" and lo != -INF, hi, m.group(4) == "]" and hi != INF)]


def _relation(s: str) -> list[Interval] | None:
    """`x > 2`, `2 < x \\le 5`, `3 \\ge x`, `x \\ne 3` as intervals (one variable only)."""
    parts = _REL_RE.split(s)
    rels = [_REL[r] for r in _REL_RE.findall(s)]
    parts = [p.strip() for p in parts]
    if len(rels) == 1:
        a, b = parts
        if _ABS_RE.match(b) and not _ABS_RE.match(a):
            a, b, rels = b, a, [_FLIP[rels[0]]]
        if _ABS_RE.match(a):
            return _distance(_ABS_RE.match(a), rels[0], b)
        if _VAR_RE.match(a) and not _VAR_RE.match(b):
            return _one_side(rels[0], b)
        if _VAR_RE.match(b) and not _VAR_RE.match(a):
            return _one_side(_FLIP[rels[0]], a)
        return None
    if len(rels) == 2 and _VAR_RE.match(parts[1]) and "!=" not in rels:
        left = _one_side(_FLIP[rels[0]], parts[0])
        right = _one_side(rels[1], parts[2])
        return _intersect(left, right) if left is not None and right is not None else None
    return None


def _distance(m: re.Match, rel: str, bound: str) -> list[Interval] | None:
    """`|x - c| < r` and friends: the points within (or beyond) r of c."""
    r = _endpoint(bound)
    shift = _endpoint((m.group(1) or "+") + (m.group(2) or "0"))
    if r is None or shift is None or math.inf in (abs(r), abs(shift)) or r < 0 or rel == "!=":
        return None
    lo, hi = -shift - r, -shift + r
    if rel in ("<", "<="):
        return [(lo, rel == "<=", hi, rel == "<=")] if r > 0 else []
    closed = rel == ">="
    return _normalise([(-INF, False, lo, closed), (hi, closed, INF, False)])


def _one_side(rel: str, bound: str) -> list[Interval] | None:
    v = _endpoint(bound)
    if v is None or v in (INF, -INF):
        return None
    if rel == "<":
        return [(-INF, False, v, False)]
    if rel == "<=":
        return [(-INF, False, v, True)]
    if rel == ">":
        return [(v, False, INF, False)]
    if rel == ">=":
        return [(v, True, INF, False)]
    return [(-INF, False, v, False), (v, False, INF, False)]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for lo1, lc1, hi1, hc1 in a:
        for lo2, lc2, hi2, hc2 in b:
            lo, lc = (lo1, lc1) if _lt(lo2, lo1) else (lo2, lc2) if _lt(lo1, lo2) else (lo1, lc1 and lc2)
            hi, hc = (hi1, hc1) if _lt(hi1, hi2) else (hi2, hc2) if _lt(hi2, hi1) else (hi1, hc1 and hc2)
            if _lt(lo, hi) or (_same(lo, hi) and lc and hc):
                out.append((lo, lc, hi, hc))
    return out


def _piece(s: str) -> list[Interval] | None:
    s = s.strip()
    if not s:
        return None
    if _REALS_RE.match(s):
        return [(-INF, False, INF, False)]
    if _EMPTY_RE.match(s):
        return []
    m = re.match(r"^[A-Za-z](?:_\{?\w+\}?)?\s*\\in\s*(.+)$", s)
    if m:
        return read_set(m.group(1))
    m = _BUILDER_RE.match(s)
    if m:  # set-builder "\{x \mid x > 2\}"
        return read_set(m.group(1))
    if s.startswith("\\{") and s.endswith("\\}"):
        points = []
        for item in split_top(s[2:-2]):
            v = _endpoint(item)
            if v is None or v in (INF, -INF):
                return None
            points.append((v, True, v, True))
        return points
    return _interval(s) or _relation(s)


def _normalise(pieces: list[Interval]) -> list[Interval]:
    order = sorted(pieces, key=lambda p: (p[0], not p[1]))
    out: list[Interval] = []
    for lo, lc, hi, hc in order:
        if out:
            plo, plc, phi, phc = out[-1]
            touching = _same(phi, lo)
            if _lt(lo, phi) or (touching and (phc or lc)):
                if _lt(phi, hi) or (_same(phi, hi) and hc and not phc):
                    out[-1] = (plo, plc, hi, hc or (_same(phi, hi) is True and phc))
                continue
        out.append((lo, lc, hi, hc))
    return out


def read_set(s: str) -> list[Interval] | None:
    """The canonical form of a set of reals written in any notation above, or None."""
    s = s.strip()
    if len(s) > 300:
        return None
    alternatives = [p for p in _OR_RE.split(s) if p.strip()]
    pieces: list[Interval] = []
    for alt in alternatives:
        conj = [c for c in _AND_RE.split(alt) if c.strip()]
        if not conj:
            return None
        part = _piece(conj[0])
        for extra in conj[1:]:
            other = _piece(extra)
            if part is None or other is None:
                return None
            part = _intersect(part, other)
        if part is None:
            return None
        pieces.extend(part)
    if not pieces and len(alternatives) != 1:
        return None
    return _normalise(pieces)


def sets_equal(a: list[Interval], b: list[Interval]) -> bool:
    if len(a) != len(b):
        return False
    for (lo1, lc1, hi1, hc1), (lo2, lc2, hi2, hc2) in zip(a, b, strict=True):
        if lc1 != lc2 or hc1 != hc2 or _same(lo1, lo2) is not True or _same(hi1, hi2) is not True:
            return False
    return True
