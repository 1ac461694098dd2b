"""A small, safe reader of math notation (LaTeX or code-style) into values, without sympy.

It parses the arithmetic most answers are written in — numbers, + - * / ^ and `**`, implicit
products, `\\frac`, `\\sqrt[n]`, `!`, `\\binom`, `\\pi`, `e`, `i`, trig/log/hyperbolic functions,
and code spellings such as `np.arcsin(10/13)` or `math.sqrt(2)` — into a tree of tuples, and
evaluates that tree exactly (`Fraction`) when it can, else as a complex float. Nothing is
executed: the grammar is ours, every size is bounded (input length, digits, exponents,
factorials, nesting), and an unknown command makes the reader give up (`None`), never guess.

Two answers are compared by value (`numeric_equal`): exact rationals exactly, other values to
1e-11 relative; with free variables, at a few fixed pseudo-random points (two different
expressions agree at random points only by accident). Values that are close but not within
1e-11, or evaluations that fail, are undecided and left to the symbolic engine.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

MAX_CHARS = 300
MAX_DEPTH = 40
MAX_FACTORIAL = 300
MAX_BITS = 4096  # an exact intermediate larger than this is refused (2^4096 ~ 1e1233)
EQUAL_REL_TOL = 1e-11
DIFFERENT_REL_TOL = 1e-6
POINTS = 3

_SPACING_RE = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])")
_CODE_PREFIX_RE = re.compile(r"\b(?:np|numpy|math|cmath|sympy|sp)\.")
_TOKEN_RE = re.compile(
    r"\s*(?:(\d+\.?\d*|\.\d+)|(\\[A-Za-z]+)|(log(?:10|2)(?=\s*\()|[A-Za-z]+)|(\*\*|!!|[-+*/^_()\[\]{}!,|=]))"
)

FUNCTIONS = {
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "ln", "log", "exp", "sqrt", "abs", "factorial", "binom", "comb", "rational", "arcsinh",
    "arccosh", "arctanh", "log10", "log2",
}
_ALIASES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh",
            "acosh": "arccosh", "atanh": "arctanh", "choose": "binom", "fabs": "abs"}
_CONSTANTS = {"pi": ("const", "pi"), "e": ("const", "e"), "i": ("const", "i"), "I": ("const", "i"),
              "E": ("const", "e")}
_NAMES = sorted(FUNCTIONS | set(_ALIASES) | {"pi"}, key=len, reverse=True)
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi", "varphi", "chi", "psi", "omega",
}
_TEXT_CMDS = {"mathrm", "text", "operatorname", "mathit", "textrm"}


class Unreadable(Exception):
    """The text is outside the grammar (or too large): no value, no guess."""


def _tokens(s: str) -> list[tuple[str, str]]:
    s = _SPACING_RE.sub(" ", _CODE_PREFIX_RE.sub("", s))
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            if s[pos:].strip() == "":
                break
            raise Unreadable(s[pos])
        num, cmd, word, op = m.groups()
        pos = m.end()
        if num is not None:
            out.append(("num", num))
        elif cmd is not None:
            out.append(("cmd", cmd[1:]))
        elif word is not None:
            out.extend(_split_word(word, pos < len(s) and s[pos] == "("))
        else:
            out.append(("op", op))
    return out


def _split_word(word: str, called: bool) -> list[tuple[str, str]]:
    """A letter run: a known function or constant name, else one variable per letter."""
    low = word.lower()
    if low in FUNCTIONS or low in _ALIASES:
        return [("fn", _ALIASES.get(low, low))]
    if low == "pi":
        return [("name", "pi")]
    out, i = [], 0
    while i < len(word):
        for name in _NAMES:
            if len(name) > 1 and word.startswith(name, i) and (i + len(name) < len(word) or called):
                out.append(("fn", _ALIASES.get(name, name)) if name != "pi" else ("name", "pi"))
                i += len(name)
                break
        else:
            out.append(("name", word[i]))
            i += 1
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks, self.i, self.depth = toks, 0, 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise Unreadable(f"expected {value or kind}")
        self.i += 1
        return tok

    def at(self, kind: str, *values: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == kind and (not values or tok[1] in values)

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unreadable("nesting")
        left = self.term()
        while self.at("op", "+", "-"):
            op = self.take("op")[1]
            left = ("add" if op == "+" else "sub", left, self.term())
        self.depth -= 1
        return left

    def term(self) -> tuple:
        left = self.unary()
        while True:
            if self.at("op", "*", "/") or self.at("cmd", "cdot", "times", "div"):
                op = self.peek()[1]
                self.i += 1
                right = self.unary()
                left = ("div", left, right) if op in ("/", "div") else ("mul", left, right)
            elif self._starts_primary():
                left = ("mul", left, self.postfix(self.primary()))
            else:
                return left

    def unary(self) -> tuple:
        if self.at("op", "-"):
            self.i += 1
            return ("neg", self.unary())
        if self.at("op", "+"):
            self.i += 1
            return self.unary()
        return self.postfix(self.primary())

    def _starts_primary(self) -> bool:
        tok = self.peek()
        if tok is None:
            return False
        kind, value = tok
        if kind == "op":
            return value in "([{"
        return kind in ("num", "name", "fn") or (kind == "cmd" and value not in ("cdot", "times", "div"))

    def postfix(self, base: tuple) -> tuple:
        while True:
            if self.at("op", "^", "**"):
                self.i += 1
                base = ("pow", base, self.exponent())
            elif self.at("op", "!", "!!"):
                base = ("fact" if self.take("op")[1] == "!" else "dfact", base)
            elif self.at("op", "_") and base[0] == "var":
                self.i += 1
                base = ("var", base[1] + "_" + _flat(self.group_or_token()))
            else:
                return base

    def exponent(self) -> tuple:
        """A superscript: a group, a signed or single primary; `a^b^c` is `a^(b^c)` (as `**`)."""
        if self.at("op", "-", "+"):
            sign = self.take("op")[1]
            inner = self.exponent()
            return ("neg", inner) if sign == "-" else inner
        base = self.group() if self.at("op", "{") else self.primary()
        if self.at("op", "^", "**"):
            self.i += 1
            return ("pow", base, self.exponent())
        return base

    def group(self) -> tuple:
        self.take("op", "{")
        inner = self.expr()
        self.take("op", "}")
        return inner

    def group_or_token(self) -> tuple:
        if self.at("op", "{"):
            return self.group()
        return self.primary()

    def primary(self) -> tuple:
        tok = self.peek()
        if tok is None:
            raise Unreadable("end")
        kind, value = tok
        self.i += 1
        if kind == "num":
            return ("num", _number(value))
        if kind == "name":
            return _CONSTANTS.get(value, ("var", value))
        if kind == "fn":
            return self.function(value)
        if kind == "op" and value in "([{":
            close = {"(": ")", "[": "]", "{": "}"}[value]
            inner = self.expr()
            self.take("op", close)
            return inner
        if kind == "op" and value == "|":
            inner = self.expr()
            self.take("op", "|")
            return ("fn", "abs", inner)
        if kind == "cmd":
            return self.command(value)
        raise Unreadable(value)

    def command(self, name: str) -> tuple:
        if name == "frac":
            return ("div", self.group_or_token(), self.group_or_token())
        if name == "sqrt":
            if self.at("op", "["):
                self.i += 1
                index = self.expr()
                self.take("op", "]")
                return ("root", index, self.group_or_token())
            return ("fn", "sqrt", self.group_or_token())
        if name == "binom":
            return ("binom", self.group_or_token(), self.group_or_token())
        if name == "pi":
            return ("const", "pi")
        if name in _GREEK:
            return ("var", name)
        if name in FUNCTIONS or name in _ALIASES:
            return self.function(_ALIASES.get(name, name))
        if name in _TEXT_CMDS and self.at("op", "{"):
            self.take("op", "{")
            words = []
            while not self.at("op", "}"):
                words.append(self.take("name")[1] if self.at("name") else self.take("fn")[1])
            self.take("op", "}")
            word = "".join(words)
            if word in _CONSTANTS:
                return _CONSTANTS[word]
            if word.lower() in FUNCTIONS or word.lower() in _ALIASES:
                return self.function(_ALIASES.get(word.lower(), word.lower()))
            raise Unreadable(word)
        raise Unreadable(name)

    def function(self, name: str) -> tuple:
        power = base = None
        for _ in range(2):
            if self.at("op", "^"):
                self.i += 1
                power = self.exponent()
            elif self.at("op", "_") and name == "log":
                self.i += 1
                base = self.group_or_token()
        if self.at("op", "("):
            self.i += 1
            args = [self.expr()]
            while self.at("op", ","):
                self.i += 1
                args.append(self.expr())
            self.take("op", ")")
        elif self.at("op", "{"):
            args = [self.group()]
        else:  # "\sin 2x": the argument is the product of primaries that follows
            arg = self.postfix(self.primary())
            while self.at("num") or self.at("name") or (self.at("cmd") and self.peek()[1] in _GREEK | {"pi"}):
                arg = ("mul", arg, self.postfix(self.primary()))
            args = [arg]
        node = _apply(name, args, base)
        if power is not None:
            if power == ("neg", ("num", Fraction(1))) and name in _INVERSE:
                return _apply(_INVERSE[name], args, None)  # \sin^{-1} x is arcsin x
            node = ("pow", node, power)
        return node


_INVERSE = {"sin": "arcsin", "cos": "arccos", "tan": "arctan", "sinh": "arcsinh", "cosh": "arccosh",
            "tanh": "arctanh"}


def _apply(name: str, args: list[tuple], base: tuple | None) -> tuple:
    if name in ("binom", "comb") and len(args) == 2:
        return ("binom", args[0], args[1])
    if name == "rational" and len(args) == 2:
        return ("div", args[0], args[1])
    if name == "log" and len(args) == 2:  # sympy's log(x, base)
        return ("div", ("fn", "ln", args[0]), ("fn", "ln", args[1]))
    if len(args) != 1:
        raise Unreadable(name)
    if name == "factorial":
        return ("fact", args[0])
    if name == "log" and base is not None:
        return ("div", ("fn", "ln", args[0]), ("fn", "ln", base))
    if name == "log":  # log without a base: natural in code and analysis, as sympy reads it
        name = "ln"
    return ("fn", name, args[0])


def _flat(node: tuple) -> str:
    if node[0] in ("num", "var", "const"):
        return str(node[1])
    raise Unreadable("subscript")


def _number(text: str) -> Fraction:
    if len(text) > 60:
        raise Unreadable("digits")
    return Fraction(text)


@lru_cache(maxsize=4096)
def parse(s: str) -> tuple | None:
    """The expression tree of `s`, or None when it is outside the grammar."""
    if not s or len(s) > MAX_CHARS:
        return None
    try:
        p = _Parser(_tokens(s))
        tree = p.expr()
        return tree if p.i == len(p.toks) else None
    except (Unreadable, ValueError, ZeroDivisionError, RecursionError):
        return None


def free_vars(tree: tuple) -> frozenset[str]:
    if tree[0] == "var":
        return frozenset([tree[1]])
    out: frozenset[str] = frozenset()
    for child in tree[1:]:
        if isinstance(child, tuple):
            out |= free_vars(child)
    return out


def has_constant(tree: tuple, name: str) -> bool:
    if tree[0] == "const":
        return tree[1] == name
    return any(isinstance(c, tuple) and has_constant(c, name) for c in tree[1:])
