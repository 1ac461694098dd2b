"""Fast-path normalisation: LaTeX clean-up, gold unwrapping and exact number parsing.

Nothing here calls sympy or Math-Verify. Numbers are parsed into `fractions.Fraction` (exact),
so integers, decimals, simple fractions, mixed numbers, repeating decimals and scientific
notation are compared without any symbolic engine. All regexes are linear (no nested
quantifiers) and inputs are bounded by the caller.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

MAX_EXPONENT = 400  # |10^k| beyond this is not a benchmark answer; refuse rather than compute

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": r"\times ", "\u00b7": r"\cdot ", "\u221a": r"\sqrt",
    "\u03c0": r"\pi ", "\u221e": r"\infty ", "\u00b0": r"^\circ", "\u2264": r"\le ",
    "\u2265": r"\ge ", "\u00bd": "1/2", "\ufffd": "", "\\langle": "(", "\\rangle": ")",
    "\u222a": r"\cup ", "\u2229": r"\cap ", "\u2260": r"\ne ", "\u2208": r"\in ",
    "\u211d": r"\mathbb{R}", "\u2205": r"\emptyset ", "\u2261": r"\equiv ", "\u00b1": r"\pm ",
}
_DROP_RE = re.compile(
    r"(?<!\\)\\(?:left|right|big|Big|bigg|Bigg|displaystyle|textstyle)(?![A-Za-z])|(?<!\\)\\[!,;: ]|\\q?quad(?![A-Za-z])|~"
)
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|\^\{\\text\{\s*o\s*\}\}")
_PERCENT_RE = re.compile(r"\\?%")
_THOUSANDS_SPACE_RE = re.compile(r"(?<=\d),\s*\\[!,;: ]\s*(?=\d)")
_TEXT_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}(\^\{?\d\}?)?")
_UNIT_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z ./]*$")
_ANDOR_RE = re.compile(r"\\text\{\s*(?:and/or|and|or|,)\s*\}|\s+(?:and/or|and|or)\s+")
_FRAC_CMD_RE = re.compile(r"\\[dtc]frac(?![A-Za-z])")
# A value followed by plain words ("12.8 m/s", "5 apples", "864 square inches"): the words
# are a unit. Two letters at least, so "2 k" (a value times a variable) is left alone.
_BARE_UNIT_RE = re.compile(
    r"^(-?[\d.,/]*\d(?:\\frac\{\d+\}\{\d+\})?)\s+([A-Za-z][A-Za-z/ .-]*(?:\^\{?-?\d+\}?[A-Za-z/ .-]*)*)$"
)
_CHOOSE_RE = re.compile(r"\{?\s*([^{}\s]+)\s*\\choose\s*([^{}\s]+)\s*\}?")
_BINOM_RE = re.compile(r"\\binom\{(\d{1,4})\}\{(\d{1,4})\}")
APPROX_RE = re.compile(r"\\approx|\\simeq|≈")
_RELATION_RE = re.compile(r"[<>]|\\[lg]eq?(?![a-z])|\\[lg]t(?![a-z])|\\neq?(?![a-z])")
# "13 \pmod{18}", "13 (mod 18)": the residue is the answer, the modulus restates the question.
_MOD_RE = re.compile(r"\s*(?:\\pmod\s*\{[^{}]*\}|\\pmod\s*\d+|\(\s*\\?(?:bmod|mod)\s*[^()]*\)|\\b?mod\s*\{?\d+\}?)\s*\.?$")
_LEAD_RE = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_DEGREE_WORD_RE = re.compile(r"\bdeg(?:rees?)?\b", re.IGNORECASE)
_FRAC_DIGITS_RE = re.compile(r"\\frac\s*(\d0\d*)(\d)(?![\d{])")


@dataclass(frozen=True)
class Cleaned:
    text: str  # LaTeX with wrappers, spacing, units, degree and percent signs removed
    percent: bool  # a percent sign was removed
    unit_removed: bool
    degree: bool = False  # a degree mark was removed


def gold_to_text(gold: object) -> str:
    """One answer string from a gold as benchmarks store it (str, number, list, "['2']")."""
    if gold is None:
        return ""
    if isinstance(gold, float) and gold.is_integer():
        return str(int(gold))  # AMC stores 27.0
    if isinstance(gold, (list, tuple)):
        return ", ".join(gold_to_text(g) for g in gold)
    text = str(gold).strip()
    if _LIST_GOLD_RE.fullmatch(text):
        # An OlympiadBench list written as a string ("['2']", str(list)). Items are read with a
        # regex, not a Python parser: "\frac" must not become a form feed, and nothing runs.
        items = [a if a else b for a, b in _LIST_ITEM_RE.findall(text)]
        return ", ".join(i.replace("\\\\", "\\") for i in items)
    return text


_LIST_GOLD_RE = re.compile(r"\[\s*(['\"]).*\1\s*\]", re.DOTALL)
_LIST_ITEM_RE = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def strip_braces(s: str) -> str:
    """Drop redundant outer braces: "{{5}}" -> "5" (a few balance checks, each linear)."""
    levels = 0
    while levels < len(s) // 2 and s[levels] == "{" and s[-1 - levels] == "}":
        levels += 1
    for k in range(levels, max(levels - 8, 0), -1):
        inner, depth = s[k:-k], 0
        for c in inner:
            depth += (c == "{") - (c == "}")
            if depth < 0:
                break
        if depth == 0:
            return inner.strip()
    return s


def group_end(s: str, i: int) -> int | None:
    """The index of the `}` that closes the brace group opening at s[i] == "{" (every brace
    counts, escaped or not, as the MATH scorers count them), or None when it never closes."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _read_arg(s: str, i: int) -> tuple[str, int] | None:
    """One TeX argument at s[i:]: a brace group's content or a single character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] != "{":
        return s[i], i + 1
    end = group_end(s, i)
    return None if end is None else (s[i + 1 : end], end + 1)


def brace_args(s: str, command: str, nargs: int) -> str:
    r"""Rewrite `\frac12` / `\frac 34` / `\sqrt2` to the braced form `\frac{1}{2}`."""
    out, pos = [], 0
    token = "\\" + command
    while True:
        k = s.find(token, pos)
        if k < 0 or (k + len(token) < len(s) and s[k + len(token)].isalpha()):
            if k < 0:
                out.append(s[pos:])
                return "".join(out)
            out.append(s[pos : k + len(token)])
            pos = k + len(token)
            continue
        out.append(s[pos:k] + token)
        i = k + len(token)
        if command == "sqrt" and i < len(s) and s[i] == "[":
            close = s.find("]", i)
            if close < 0:
                out.append(s[i:])
                return "".join(out)
            out.append(s[i : close + 1])
            i = close + 1
        for _ in range(nargs):
            arg = _read_arg(s, i)
            if arg is None:
                break
            out.append("{" + arg[0] + "}")
            i = arg[1]
        pos = i


def _strip_delimiters(s: str) -> str:
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                s, changed = s[len(a) : len(s) - len(b)].strip(), True
        for cmd in ("\\boxed{", "\\fbox{"):
            if s.startswith(cmd) and s.endswith("}"):
                s, changed = s[len(cmd) : -1].strip(), True
    return s.replace("$", "")


def _texts(s: str) -> tuple[str, bool]:
    """Unwrap \\text{} blocks: keep answers written in text, drop a unit after a value.

    A block is a unit when it holds only words, ends the string (units follow the value:
    "15\\mbox{ cm}^2", "5.4 \\text{ cents}") and something with a digit or command precedes it.
    """
    blocks = list(_TEXT_RE.finditer(s))
    if not blocks:
        return s, False
    last = blocks[-1]
    before = s[: last.start()].strip()
    inner = re.sub(r"~|\\[,;: ]", " ", last.group(1)).strip()
    if (
        not s[last.end() :].strip(" .")
        and before
        and re.search(r"[\d\\]", before)
        and _UNIT_WORD_RE.match(inner)
        and not before.endswith(("_", "_{", "^", "^{"))
    ):
        return _TEXT_RE.sub(lambda m: m.group(1), before), True
    return _TEXT_RE.sub(lambda m: m.group(1), s), False


@lru_cache(maxsize=8192)
def clean(s: str) -> Cleaned:
    """Light, meaning-preserving clean-up; the result is what comparison and sympy see.

    Cached: a policy repeats the same few answers (and one gold) thousands of times a step.
    """
    original = s
    for k, v in _UNICODE.items():
        if k in s:
            s = s.replace(k, v)
    s = _strip_delimiters(s.replace("\\$", ""))
    if s.endswith("\\") and not s.endswith("\\\\"):  # "\\boxed{\\ 2\\ }" stripped to "\\ 2\\"
        s = s[:-1]
    s = strip_braces(s).replace("{,}", ",")
    if "choose" in s:  # "{10 \\choose 3}" is "\\binom{10}{3}"
        s = _CHOOSE_RE.sub(r"\\binom{\1}{\2}", s)
    if "binom" in s:  # small integer binomials are numbers (Math-Verify misreads products)
        s = _BINOM_RE.sub(lambda m: f"({math.comb(int(m.group(1)), int(m.group(2)))})", s)
        s = re.sub(r"\)\s*\(", r")\\cdot(", s)
    s = _THOUSANDS_SPACE_RE.sub(",", s)  # "11,\\! 111" keeps its thousands separator tight
    if _ANDOR_RE.search(s) and not _RELATION_RE.search(s):  # "x<2 or x>3" keeps its "or"
        s = _ANDOR_RE.sub(", ", s)
    s, unit_removed = _texts(s)
    if "nswer" in s:
        s = _LEAD_RE.sub("", s.strip())  # "\\text{The answer is } 5"
    if "mod" in s:
        s = _MOD_RE.sub("", s)
    s = _DROP_RE.sub("", s)
    s = _FRAC_CMD_RE.sub(r"\\frac", s)
    degree = "circ" in s or "deg" in s or "^{\\text" in s
    if degree:
        degree = bool(_DEGREE_RE.search(s))
        s = _DEGREE_RE.sub("", s)
    percent = bool(_PERCENT_RE.search(s))
    s = _PERCENT_RE.sub("", s)
    if "\\frac" in s:
        # "\\frac103" read as TeX divides by zero; people who write it mean 10/3
        s = brace_args(_FRAC_DIGITS_RE.sub(r"\\frac{\1}{\2}", s), "frac", 2)
    if "\\sqrt" in s:
        s = brace_args(s, "sqrt", 1)
    s = s.strip().rstrip(".").strip()
    m = _BARE_UNIT_RE.match(s)
    if m and sum(c.isalpha() for c in m.group(2)) >= 2:
        s, unit_removed = m.group(1), True
    degree = degree or bool(unit_removed and _DEGREE_WORD_RE.search(original))  # "30 degrees"
    return Cleaned(s, percent, unit_removed, degree)


_WS_RE = re.compile(r"\s+")
_SUPSUB_RE = re.compile(r"([\^_])\{(\w)\}")


@lru_cache(maxsize=8192)
def canonical(s: str) -> str:
    """A string key: equal keys mean the same written answer (whitespace and wrappers aside)."""
    key = _WS_RE.sub("", s)
    key = key.replace("{,}", ",").replace("\\cdot", "*").replace("\\times", "*")
    return _SUPSUB_RE.sub(r"\1\2", key)


# --- exact numbers ------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?\d+")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DEC_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SCI_E_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))[eE]([+-]?\d+)")
_SCI_TIMES_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:\\times|\\cdot|\*|x)10\^\{?([+-]?\d+)\}?")
_PRODUCT_RE = re.compile(r"\(?\d+\)?(?:(?:\\cdot|\\times|\*)\(?\d+\)?)+")
_POW10_RE = re.compile(r"([+-]?)10\^\{?([+-]?\d+)\}?")
_FRAC_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_SLASH_RE = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)/([+-]?\d+\.?\d*)")
_MIXED_RE = re.compile(r"([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")
_REPEAT_RE = re.compile(r"([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}")


@dataclass(frozen=True)
class Number:
    value: Fraction
    # The last written digit's unit for a decimal (0.01 for "12.80", 1e32 for "4.5e33");
    # None when the number is exact as written (integers, fractions, "27.0").
    quantum: Fraction | None = None


def _decimal(text: str) -> Fraction | None:
    try:
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def _quantum(mantissa: str, exp: int = 0) -> Fraction | None:
    frac = mantissa.split(".")[1] if "." in mantissa else ""
    if exp == 0 and not frac.strip("0"):
        return None  # "27", "27.0", "3.": exact integers
    return Fraction(10) ** (exp - len(frac))


@lru_cache(maxsize=8192)
def parse_number(s: str) -> Number | None:
    """An exact rational from the written forms benchmarks use, or None."""
    t = re.sub(r"\s+", "", s)
    if not t or len(t) > 120:
        return None
    if "," in t and re.search(r",\s", s):
        return None  # "8, 221" is a list; thousands separators are tight ("10,080")
    if _INT_RE.fullmatch(t):
        return Number(Fraction(int(t)))
    if _THOUSANDS_RE.fullmatch(t):
        t = t.replace(",", "")
    if _INT_RE.fullmatch(t) or _DEC_RE.fullmatch(t):
        return Number(_decimal(t), _quantum(t))
    for rx in (_SCI_E_RE, _SCI_TIMES_RE):
        m = rx.fullmatch(t)
        if m:
            exp = int(m.group(2))
            if abs(exp) > MAX_EXPONENT:
                return None
            mant = m.group(1)
            return Number(_decimal(mant) * Fraction(10) ** exp, _quantum(mant, exp) if exp else _quantum(mant))
    if _PRODUCT_RE.fullmatch(t) and len(t) <= 60:
        value = 1
        for factor in re.findall(r"\d+", t):
            value *= int(factor)
        return Number(Fraction(value))
    m = _POW10_RE.fullmatch(t)
    if m and abs(int(m.group(2))) <= MAX_EXPONENT:
        sign = -1 if m.group(1) == "-" else 1
        return Number(sign * Fraction(10) ** int(m.group(2)))
    return _parse_fraction(t)


def _parse_fraction(t: str) -> Number | None:
    m = _FRAC_RE.fullmatch(t) or _SLASH_RE.fullmatch(t)
    if m:  # "\frac{-1}{1997}", "14/3", Minerva's "-1./3"
        num, den = _decimal(m.group(2)), _decimal(m.group(3))
        if num is None or not den:
            return None
        return Number((-1 if m.group(1) == "-" else 1) * num / den)
    m = _MIXED_RE.fullmatch(t)
    if m and int(m.group(3)) < int(m.group(4)):
        sign = -1 if m.group(1) == "-" else 1
        return Number(sign * (int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))))
    m = _REPEAT_RE.fullmatch(t)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        whole, fixed, rep = m.group(2) or "0", m.group(3), m.group(4)
        base = Fraction(int(whole + fixed), 10 ** len(fixed))
        tail = Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return Number(sign * (base + tail))
    return None


def parse_complex(s: str) -> tuple[Fraction, Fraction] | None:
    """a + b i with exact rational parts (`-2 + 7i`, `1-12i`, `3i`), or None."""
    t = re.sub(r"\s+", "", s).replace("\\cdot", "").replace("*", "")
    if "i" not in t or len(t) > 80 or re.search(r"[a-hj-zA-Z\\]", t.replace("\\frac", "")):
        return None
    terms = re.findall(r"[+-]?[^+-]+", t)
    if not terms or "".join(terms) != t:
        return None
    re_part, im_part = Fraction(0), Fraction(0)
    for term in terms:
        if term.endswith("i"):
            coef = term[:-1]
            if coef in ("", "+", "-"):
                coef += "1"
            n = parse_number(coef)
            if n is None:
                return None
            im_part += n.value
        else:
            n = parse_number(term)
            if n is None:
                return None
            re_part += n.value
    return re_part, im_part


_NUMERIC_PREFIX_RE = re.compile(
    r"-?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:\s*(?:\\times|\\cdot)\s*10\^\{?-?\d+\}?|[eE][+-]?\d+)?"
)
_UNIT_TAIL_RE = re.compile(
    r"(?:\s|\\[,;:!]|~|/|\*|\(|\)|\\(?:mathrm|text|mbox|rm|operatorname)\s*\{(?:[^{}]|\{[^{}]*\})*\}"
    r"|\\(?:mu|Omega|AA|odot|circ)(?![A-Za-z])|\^\s*\{?\s*-?\d+\s*\}?|[A-Za-z]+)*"
)


def number_with_unit(s: str) -> Number | None:
    """The number of "value unit" text ("3 \\times 10^8 \\mathrm{m/s}", "12.8 m s^{-1}"), or None.

    The tail must be unit-like (words, \\mathrm/\\text blocks, /, powers) with at least two
    letters, so "2k" (a value times a variable) is not read as the number 2.
    """
    m = _NUMERIC_PREFIX_RE.match(s)
    if m is None or len(s) > 200:
        return None
    tail = s[m.end() :]
    if not _UNIT_TAIL_RE.fullmatch(tail) or sum(c.isalpha() for c in tail) < 2:
        return None
    if re.search(r"\\(?:frac|sqrt|pi)(?![A-Za-z])", tail):
        return None
    return parse_number(m.group(0))
