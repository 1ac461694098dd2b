"""Values of expression trees (`expr.parse`) and equality by value, exact where possible.

A value is a `Fraction` while every step is exact (sums, products, integer powers, factorials,
binomials, perfect roots) and a complex float otherwise. Every exact step is bounded in size
(MAX_BITS), so `9^{9^{9}}` or `1000!` is refused rather than computed.
"""

from __future__ import annotations

import cmath
import math
import random
from fractions import Fraction

from rlvr.grading.expr import (
    DIFFERENT_REL_TOL,
    EQUAL_REL_TOL,
    MAX_BITS,
    MAX_FACTORIAL,
    POINTS,
    Unreadable,
    free_vars,
    parse,
)

Value = Fraction | complex

_CONST = {"pi": complex(math.pi), "e": complex(math.e), "i": 1j}
_FUNCS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "arcsin": cmath.asin, "arccos": cmath.acos,
    "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh,
    "arcsinh": cmath.asinh, "arccosh": cmath.acosh, "arctanh": cmath.atanh, "ln": cmath.log,
    "exp": cmath.exp, "log10": cmath.log10, "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z), "cot": lambda z: 1 / cmath.tan(z),
    "log2": lambda z: cmath.log(z) / math.log(2),
}


def _small(x: Fraction) -> Fraction:
    if x.numerator.bit_length() > MAX_BITS or x.denominator.bit_length() > MAX_BITS:
        raise Unreadable("too large")
    return x


def _z(x: Value) -> complex:
    z = complex(x)
    if not (math.isfinite(z.real) and math.isfinite(z.imag)):
        raise Unreadable("not finite")
    return z


def _int_root(n: int, k: int) -> int | None:
    if n < 0:
        return None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _exact_root(x: Fraction, k: int) -> Fraction | None:
    if k < 1 or k > 64:
        return None
    if x < 0:
        if k % 2 == 0:
            return None
        r = _exact_root(-x, k)
        return -r if r is not None else None
    num, den = _int_root(x.numerator, k), _int_root(x.denominator, k)
    return Fraction(num, den) if num is not None and den is not None else None


def _pow(a: Value, b: Value) -> Value:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        if b.denominator == 1 and abs(b.numerator) <= 4096:
            if a == 0 and b < 0:
                raise Unreadable("zero division")
            bits = max(a.numerator.bit_length(), a.denominator.bit_length()) * abs(b.numerator)
            if bits <= MAX_BITS:
                return a**b.numerator
        elif b.denominator <= 64 and abs(b.numerator) <= 64:
            root = _exact_root(a, b.denominator)
            if root is not None:
                return _pow(root, Fraction(b.numerator))
            if a < 0 and b.denominator % 2 == 1:  # real odd root: (-8)^{1/3} = -2
                return -_z(_pow(-a, b))
    za, zb = _z(a), _z(b)
    if za == 0:
        if zb.real > 0:
            return 0j
        raise Unreadable("zero power")
    if abs(zb) * max(1.0, abs(cmath.log(za))) > 700:
        raise Unreadable("overflow")
    return za**zb


def _eval(t: tuple, env: dict[str, complex]) -> Value:
    kind = t[0]
    if kind == "num":
        return t[1]
    if kind == "const":
        return _CONST[t[1]]
    if kind == "var":
        return env[t[1]]
    if kind == "neg":
        return -_eval(t[1], env)
    if kind in ("add", "sub", "mul", "div"):
        a, b = _eval(t[1], env), _eval(t[2], env)
        if kind == "add":
            r = a + b
        elif kind == "sub":
            r = a - b
        elif kind == "mul":
            r = a * b
        else:
            if b == 0:
                raise Unreadable("zero division")
            r = a / b
        return _small(r) if isinstance(r, Fraction) else _z(r)
    if kind == "pow":
        return _pow(_eval(t[1], env), _eval(t[2], env))
    if kind == "fact":
        n = _eval(t[1], env)
        if not (isinstance(n, Fraction) and n.denominator == 1 and 0 <= n <= MAX_FACTORIAL):
            raise Unreadable("factorial")
        return Fraction(math.factorial(int(n)))
    if kind == "dfact":  # 7!! = 7 * 5 * 3 * 1
        n = _eval(t[1], env)
        if not (isinstance(n, Fraction) and n.denominator == 1 and 0 <= n <= 2 * MAX_FACTORIAL):
            raise Unreadable("double factorial")
        return Fraction(math.prod(range(int(n), 0, -2)))
    if kind == "binom":
        n, k = _eval(t[1], env), _eval(t[2], env)
        if not all(isinstance(v, Fraction) and v.denominator == 1 and 0 <= v <= 1000 for v in (n, k)):
            raise Unreadable("binomial")
        return Fraction(math.comb(int(n), int(k)))
    if kind == "root":
        k = _eval(t[1], env)
        if not (isinstance(k, Fraction) and k.denominator == 1 and 1 <= k <= 64):
            raise Unreadable("root index")
        return _pow(_eval(t[2], env), Fraction(1, int(k)))
    if kind == "fn":
        return _function(t[1], _eval(t[2], env))
    raise Unreadable(kind)


def _function(name: str, x: Value) -> Value:
    if name == "sqrt":
        return _pow(x, Fraction(1, 2)) if isinstance(x, Fraction) else cmath.sqrt(_z(x))
    if name == "abs":
        return abs(x) if isinstance(x, Fraction) else complex(abs(_z(x)))
    if isinstance(x, Fraction) and x == 0 and name in ("sin", "tan", "arcsin", "arctan", "sinh", "tanh"):
        return Fraction(0)
    if isinstance(x, Fraction) and name in ("exp", "cos", "cosh") and x == 0:
        return Fraction(1)
    if isinstance(x, Fraction) and name == "ln" and x == 1:
        return Fraction(0)
    z = _z(x)
    if abs(z) > 1e6 and name in ("exp", "sinh", "cosh", "tanh"):
        raise Unreadable("overflow")
    try:
        return _z(_FUNCS[name](z))
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise Unreadable(name) from exc


def evaluate(tree: tuple, env: dict[str, complex] | None = None) -> Value | None:
    """The value of a tree, or None when it is undefined or too large."""
    try:
        return _eval(tree, env or {})
    except (Unreadable, KeyError, ZeroDivisionError, OverflowError, ValueError, RecursionError):
        return None


def closeness(a: Value, b: Value) -> bool | None:
    """True: equal (exactly, or to EQUAL_REL_TOL); False: clearly different; None: unsure."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    try:
        za, zb = complex(a), complex(b)
    except OverflowError:  # an exact value beyond floats against a float: undecided
        return None
    diff, scale = abs(za - zb), max(abs(za), abs(zb))
    if diff <= EQUAL_REL_TOL * scale or diff <= 1e-12:
        return True
    if diff > DIFFERENT_REL_TOL * scale and diff > 1e-9:
        return False
    return None


def _points(names: frozenset[str]) -> list[dict[str, complex]]:
    """Fixed pseudo-random assignments (seeded by name, so results never vary between runs)."""
    out = []
    for k in range(POINTS):
        env = {}
        for name in sorted(names):
            rng = random.Random(f"{name}:{k}")
            env[name] = complex(rng.uniform(0.55, 1.95))
        out.append(env)
    return out


def value_of(s: str) -> Value | None:
    """The value of a closed expression (no variables), or None."""
    tree = parse(s)
    if tree is None or free_vars(tree):
        return None
    return evaluate(tree)


def numeric_equal(p: str, g: str) -> bool | None:
    """Equality by value of two expressions; None when either is unreadable or it is unsure."""
    tp, tg = parse(p), parse(g)
    if tp is None or tg is None:
        return None
    names = free_vars(tp) | free_vars(tg)
    if not names:
        a, b = evaluate(tp), evaluate(tg)
        return None if a is None or b is None else closeness(a, b)
    verdicts = []
    for env in _points(names):
        a, b = evaluate(tp, env), evaluate(tg, env)
        if a is not None and b is not None:
            verdicts.append(closeness(a, b))
    if False in verdicts:
        return False
    return True if len(verdicts) >= 2 and all(verdicts) else None


def proportional(p: tuple[str, str], g: tuple[str, str]) -> bool | None:
    """Are two equations `l = r` the same equation (l - r a nonzero multiple of the other's)?"""
    trees = [parse(s) for s in (*p, *g)]
    if any(t is None for t in trees):
        return None
    dp, dg = ("sub", trees[0], trees[1]), ("sub", trees[2], trees[3])
    names = free_vars(dp) | free_vars(dg)
    if not names:
        return None
    ratios = []
    for env in _points(names):
        a, b = evaluate(dp, env), evaluate(dg, env)
        if a is None or b is None:
            continue
        if closeness(a, 0) is True or closeness(b, 0) is True:
            if closeness(a, 0) != closeness(b, 0):
                return False
            continue
        try:
            ratios.append(complex(a) / complex(b))
        except (OverflowError, ZeroDivisionError):
            return None
    if len(ratios) < 2:
        return None
    verdicts = [closeness(r, ratios[0]) for r in ratios[1:]]
    if False in verdicts:
        return False
    return True if all(verdicts) else None
