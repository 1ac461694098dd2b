r"""The shape of an answer: atom, list, set, tuple/interval, union or matrix.

`structure` reads the outermost shape only (items stay strings, compared recursively by
`compare._eq`). Brackets are matched, so `(1,(2,3))` is a pair; a comma followed by a space
separates items while a tight one may be a thousands separator (`parse_number` decides first).
Named values (`x=3, y=4`) read as the tuple of their values; `\pm` in an item expands into
every sign choice (`(\pm3,\pm2)` is four tuples); a scalar before a matrix multiplies it.
"""

from __future__ import annotations

import re

from rlvr.grading.normalize import parse_number

_MATRIX_RE = re.compile(
    r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[lcr|\s]*\})?(.*)\\end\{\1\}$", re.DOTALL
)
_SCALED_MATRIX_RE = re.compile(r"^([^\\]?[^&]*?)\s*(\\begin\{([pbvBV]?matrix)\}.*\\end\{\3\})$", re.DOTALL)
_NAMED_RE = re.compile(r"^([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*([^=]+)$")
_OPEN, _CLOSE = "([{", ")]}"
MAX_PM = 4  # at most 2^4 sign choices are expanded


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
    m = _SCALED_MATRIX_RE.match(s)
    if m and m.group(1).strip() and "\\begin" not in m.group(1):  # "\frac{1}{49} \begin{pmatrix}..."
        kind, rows = structure(m.group(2))
        if kind == "matrix":
            scale = m.group(1).strip()
            return "matrix", [[f"({scale})({cell})" for cell in row] for row in rows]
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
        named = [_NAMED_RE.match(item) for item in items]
        names = [m.group(1) for m in named if m]
        if len(names) == len(items) and len(set(names)) == len(names):
            return "named", (names, [m.group(2).strip() for m in named])  # "x=3, y=4"
        return "list", items
    return "atom", s


def expand_tuple_pm(value: tuple[str, str, list[str]]) -> list[str] | None:
    """`(\\pm3, \\pm2)`: every sign choice as its own tuple string, or None without a `\\pm`."""
    left, right, items = value
    if not any("\\pm" in item or "\\mp" in item for item in items):
        return None
    choices: list[list[str]] = [[]]
    for item in items:
        options = expand_pm([item]) if item.count("\\pm") == 1 and "\\mp" not in item else [item]
        if len(options) > 1 and sum(len(o) > 1 for o in choices) >= MAX_PM:
            return None
        choices = [c + [o] for c in choices for o in options]
    return [left + ", ".join(c) + right for c in choices]


def expand_pm(items: list[str]) -> list[str]:
    out = []
    for item in items:
        if item.count("\\pm") == 1 and item.count("\\mp") == 0:
            a, b = (x.strip() for x in item.split("\\pm"))
            out.extend([f"{a}+{b}", f"{a}-{b}"] if a else [b, f"-{b}"])
        else:
            out.append(item)
    return out


def vector(kind: str, value: object) -> list[str] | None:
    """A one-row or one-column matrix, or a parenthesised tuple, as a flat list."""
    if kind == "matrix":
        rows = value
        if all(len(r) == 1 for r in rows):
            return [r[0] for r in rows]
        return rows[0] if len(rows) == 1 else None
    if kind == "tuple" and value[0] + value[1] in ("()", "[]"):
        return value[2]
    return None


