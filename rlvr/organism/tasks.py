"""Synthetic task families of the model organism, with held-out suites disjoint from pretraining.

Each family draws operands, writes a short prompt (`"327+415="`), knows its integer answer, and
writes the step-by-step *working* a tiny character-level model can learn: columns right to left,
each step one small fact with its carry or borrow written out (`7+5=12 2+1+1=4 3+4=7`).

Each family also has a *shortcut*: the answer a direct guess writes, computed column by column
with every carry (or borrow) dropped except in the leading column. It is learnable without
working - each digit depends on two operand digits - and right exactly when no carry or borrow
occurs, which is a known share of each family's problems (`shortcut_share`).

Held-out split: a stable hash (blake2b) of `family:operands` puts every problem in one of 10
buckets; bucket 0 is held out. The pretraining corpus never draws a held-out problem, and the
held-out suites draw only from bucket 0, so the two are disjoint for every seed and config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlvr.errors import UserError
from rlvr.problem import Problem

__all__ = [
    "FAMILIES",
    "Family",
    "check_family",
    "heldout_suite",
    "is_heldout",
    "operands",
    "organism_suites",
    "sample_problem",
    "shortcut_share",
    "to_problem",
    "training_pool",
]

HELDOUT_BUCKETS = 10  # 1 bucket in 10 is held out


def _add_steps(x: int, y: int) -> tuple[list[str], int]:
    """Column addition of non-negative ints, units first; returns the step strings and the sum."""
    steps, carry, i = [], 0, 0
    while x // 10**i or y // 10**i or i == 0:
        dx, dy = x // 10**i % 10, y // 10**i % 10
        s = dx + dy + carry
        steps.append(f"{dx}+{dy}" + (f"+{carry}" if carry else "") + f"={s}")
        carry, i = s // 10, i + 1
    return steps, x + y


def _sub_steps(x: int, y: int) -> tuple[list[str], int]:
    """Column subtraction (x >= y), units first; a borrow shows as the `1` in front of a digit."""
    steps, borrow = [], 0
    for i in range(len(str(x))):
        dx, dy = x // 10**i % 10, y // 10**i % 10
        r = dx - dy - borrow
        lead = "1" if r < 0 else ""
        steps.append(f"{lead}{dx}-{dy}" + ("-1" if borrow else "") + f"={r % 10}")
        borrow = int(r < 0)
    return steps, x - y


def _mul_steps(x: int, c: int) -> tuple[list[str], int]:
    """x times a single digit c, units first, carrying the tens of each partial product."""
    steps, carry = [], 0
    for i in range(len(str(x))):
        p = (x // 10**i % 10) * c + carry
        steps.append(f"{x // 10**i % 10}*{c}" + (f"+{carry}" if carry else "") + f"={p}")
        carry = p // 10
    return steps, x * c


def _drop_carries(x: int, column) -> int:
    """A column-wise result of x (and one more operand) with every carry dropped: each column
    `column(i)` (units first) is kept mod 10, except the leading one, written in full."""
    n = len(str(x))
    return sum(column(i) % 10 * 10**i for i in range(n - 1)) + column(n - 1) * 10 ** (n - 1)


def _digit(x: int, i: int) -> int:
    return x // 10**i % 10


def _carry_free_add(x: int, y: int) -> int:
    big, small = max(x, y), min(x, y)  # the longer operand sets the column count
    return _drop_carries(big, lambda i: _digit(big, i) + _digit(small, i))


def _borrow_free_sub(x: int, y: int) -> int:
    return _drop_carries(x, lambda i: _digit(x, i) - _digit(y, i))  # x > y


def _carry_free_mul(x: int, c: int) -> int:
    return _drop_carries(x, lambda i: _digit(x, i) * c)


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    draw: Callable[[np.random.Generator], tuple[int, ...]]
    prompt: Callable[[tuple[int, ...]], str]
    solve: Callable[[tuple[int, ...]], tuple[str, int]]  # (working text, answer)
    shortcut: Callable[[tuple[int, ...]], int]  # a direct guess: right iff no carry/borrow
    # Digits a guess is written with, zero-padded (0732): every digit then sits at a fixed
    # distance from the operand digits it comes from, which a tiny model can learn to read.
    guess_width: int


def _draw_sub(rng: np.random.Generator) -> tuple[int, int]:
    a, b = (int(v) for v in rng.integers(100, 1000, size=2))
    while a == b:
        b = int(rng.integers(100, 1000))
    return (a, b) if a > b else (b, a)


def _solve_expr(ops: tuple[int, ...]) -> tuple[str, int]:
    a, b, c = ops
    add, s = _add_steps(a, b)
    mul, p = _mul_steps(s, c)
    return " ".join(add) + f" so {s}, " + " ".join(mul), p


FAMILIES: dict[str, Family] = {
    "add": Family(
        "add", "3-digit + 3-digit addition",
        lambda rng: tuple(int(v) for v in rng.integers(100, 1000, size=2)),
        lambda o: f"{o[0]}+{o[1]}=",
        lambda o: (" ".join(_add_steps(o[0], o[1])[0]), o[0] + o[1]),
        lambda o: _carry_free_add(o[0], o[1]), 4),
    "sub": Family(
        "sub", "3-digit - 3-digit subtraction with a positive result",
        _draw_sub,
        lambda o: f"{o[0]}-{o[1]}=",
        lambda o: (" ".join(_sub_steps(o[0], o[1])[0]), o[0] - o[1]),
        lambda o: _borrow_free_sub(o[0], o[1]), 3),
    "mul": Family(
        "mul", "3-digit x 1-digit (2-9) multiplication",
        lambda rng: (int(rng.integers(100, 1000)), int(rng.integers(2, 10))),
        lambda o: f"{o[0]}*{o[1]}=",
        lambda o: (" ".join(_mul_steps(o[0], o[1])[0]), o[0] * o[1]),
        lambda o: _carry_free_mul(o[0], o[1]), 4),
    "expr": Family(
        "expr", "two-step (a+b)*c with 2-digit a, b and 1-digit (2-9) c",
        lambda rng: (int(rng.integers(10, 100)), int(rng.integers(10, 100)),
                     int(rng.integers(2, 10))),
        lambda o: f"({o[0]}+{o[1]})*{o[2]}=",
        _solve_expr,
        lambda o: _carry_free_mul(_carry_free_add(o[0], o[1]), o[2]), 4),
}


def check_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"unknown organism family {name!r}",
                        f"choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def _bucket(family: str, ops: tuple[int, ...]) -> int:
    key = f"{family}:{','.join(map(str, ops))}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % HELDOUT_BUCKETS


def is_heldout(family: str, ops: tuple[int, ...]) -> bool:
    return _bucket(family, ops) == 0


def sample_problem(family: str, rng: np.random.Generator, *, heldout: bool) -> tuple[int, ...]:
    """Draw operands from the held-out part of the problem space or from the rest."""
    fam = check_family(family)
    while True:
        ops = fam.draw(rng)
        if is_heldout(family, ops) == heldout:
            return ops


def to_problem(family: str, ops: tuple[int, ...], suite: str) -> Problem:
    fam = FAMILIES[family]
    _, answer = fam.solve(ops)
    return Problem(id=f"{family}-{'-'.join(map(str, ops))}", problem=fam.prompt(ops),
                   answer=str(answer), suite=suite, meta={"family": family})


MAX_HELDOUT = 10_000


def heldout_suite(family: str, n: int = 200, seed: int = 0) -> list[Problem]:
    """`n` distinct held-out problems of one family, the same list for the same seed."""
    return [to_problem(family, ops, f"organism-{family}")
            for ops in _distinct(family, n, seed, heldout=True)]


def training_pool(family: str, n: int, seed: int = 0) -> list[Problem]:
    """`n` distinct problems of one family from the training split (buckets 1-9), which no
    held-out suite draws from: where a study's anchor and history pool come from."""
    return [to_problem(family, ops, f"organism-train-{family}")
            for ops in _distinct(family, n, seed, heldout=False)]


def _distinct(family: str, n: int, seed: int, *, heldout: bool) -> list[tuple[int, ...]]:
    check_family(family)
    what = "a held-out suite" if heldout else "a training pool"
    if n < 1:
        raise UserError(f"{what} needs n >= 1 problems, got {n}")
    if n > MAX_HELDOUT:
        # Rejection sampling into the held-out bucket: a huge n would spin for minutes.
        raise UserError(f"{what} has at most {MAX_HELDOUT} problems, {n} were asked for",
                        f"use an index (or a suite size) below {MAX_HELDOUT}")
    # The training split gets its own stream (stream 1), so its problems do not shadow the
    # held-out suite's draws for the same seed.
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(family), *([] if heldout else [1])])
    seen: dict[tuple[int, ...], None] = {}
    for _ in range(100 * n):
        if len(seen) == n:
            break
        seen.setdefault(sample_problem(family, rng, heldout=heldout), None)
    if len(seen) < n:
        raise UserError(f"family {family!r} has fewer than {n} problems in that split",
                        f"ask for at most {len(seen)}")
    return list(seen)


def operands(problem: Problem) -> tuple[int, ...]:
    """The operands of an organism problem, read back from its id (`add-327-415`)."""
    return tuple(int(v) for v in problem.id.split("-")[1:])


def shortcut_share(problems: list[Problem]) -> float:
    """The share of organism `problems` (one family) on which the family's shortcut is right:
    the accuracy a guess mode that learnt the shortcut perfectly would have."""
    if not problems:
        raise UserError("shortcut_share needs at least one problem")
    hits = sum(FAMILIES[p.meta["family"]].shortcut(operands(p)) == int(p.answer) for p in problems)
    return hits / len(problems)


def organism_suites() -> dict[str, Callable[..., list[Problem]]]:
    """Suite name -> loader `(n=200, seed=0) -> list[Problem]`, e.g. `organism-add`."""
    def loader(family: str) -> Callable[..., list[Problem]]:
        def load(n: int = 200, seed: int = 0) -> list[Problem]:
            return heldout_suite(family, n=n, seed=seed)
        load.__doc__ = f"Held-out organism problems: {FAMILIES[family].description}."
        return load
    return {f"organism-{name}": loader(name) for name in FAMILIES}
