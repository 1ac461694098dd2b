"""Throughput and accuracy of rlvr.grading against Math-Verify, in one process.

Sets: (a) RL-typical answers a policy emits thousands of times a step (the gold's own form,
plain integers and decimals, simple fractions, wrong numbers) over golds from MATH500-like
problems; (h) hard answers: the labelled notation kinds of tests/grading_kinds.py (sets and
inequalities, named tuples, equations, unevaluated arithmetic, angles, other forms, words,
code-style golds, stated lists, cut-off responses), keeping only the items that the exact fast
path (same written form, or two plain numbers) does not decide, graded with every cache of
ours emptied before each item; (b) the hand-labelled table in tests/grading_cases.py.
Math-Verify gets the gold wrapped in \\boxed{} (its best case) and its default settings (main
thread, signal timeouts). rlvr.grading's hard path runs in its worker process, warmed first.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/grader.py [--n 2000] [--seed 0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Golds as benchmarks store them (MATH500, AIME, AMC, the paper's pi1 label).
GOLDS = ["12.8", "204", "\\frac{14}{3}", "27.0", "025", "-2", "0.15", "\\frac{1}{2}", "1250",
         "4.5", "-\\frac{3}{8}", "10,\\!080", "\\dfrac{17}{50}", "116", "3.21", "\\frac43"]


def rl_typical(n: int, seed: int) -> list[tuple[str, str]]:
    """(response, gold) pairs; about a third right in the gold's form, the rest wrong numbers."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        gold = rng.choice(GOLDS)
        kind = rng.random()
        if kind < 0.35:
            answer = gold
        elif kind < 0.65:
            answer = str(rng.randint(-50, 2000))
        elif kind < 0.85:
            answer = f"{rng.uniform(-100, 100):.{rng.randint(1, 3)}f}"
        else:
            answer = f"\\frac{{{rng.randint(1, 99)}}}{{{rng.randint(2, 99)}}}"
        steps = rng.randint(1, 9)
        items.append((f"Step {steps}: we simplify and get $x = {answer}$.\n"
                      f"So the final answer is $\\boxed{{{answer}}}$.", gold))
    return items


def math_verify_grade(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse("\\boxed{" + gold + "}"), parse(response)))
    except Exception:  # Math-Verify raises on a few inputs; that is its "not equal"
        return False


def rlvr_grade(response: str, gold: str) -> bool:
    from rlvr.grading import grade

    return grade(response, gold).correct_lenient


def rlvr_grade_uncached(response: str, gold: str) -> bool:
    """As `rlvr_grade`, with every string cache of the grader emptied first (worst case)."""
    from rlvr.grading import expr, normalize

    for cached in (normalize.clean, normalize.canonical, normalize.parse_number, expr.parse):
        cached.cache_clear()
    return rlvr_grade(response, gold)


def hard_set() -> list[tuple[str, str, bool]]:
    """(response, gold, label) from the notation kinds, where the exact fast path does not apply."""
    from rlvr.grading.normalize import canonical, clean, parse_number
    from tests.grading_cases import b
    from tests.grading_kinds import KINDS, STATED

    def fast(pred: str, gold: str) -> bool:
        p, g = clean(pred).text, clean(gold).text
        return canonical(p) == canonical(g) or (parse_number(p) is not None and parse_number(g) is not None)

    items = [(b(p), g, ok) for rows in KINDS.values() for p, g, ok in rows if not fast(p, g)]
    return items + [(r, g, ok) for r, g, ok, _ in STATED]


def timed(fns, items, repeats: int) -> list[tuple[float, list[bool]]]:
    """Per grader: best items/s of `repeats` passes and the decisions of the last pass. The
    graders alternate pass by pass (A B A B ...), so a change in the machine's load between
    passes hits both alike; the best pass of each is the one least disturbed by other jobs."""
    best = [0.0] * len(fns)
    outs: list[list[bool]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            outs[k] = [fn(r, g) for r, g in items]
            best[k] = max(best[k], len(items) / (time.perf_counter() - start))
    return list(zip(best, outs, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="RL-typical items")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5, help="passes per grader; the best counts")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # it logs whole inputs

    from rlvr.grading.deadline import symbolic_pool
    from tests.grading_cases import BOXED, REALISTIC, RESPONSES, b

    symbolic_pool().warm()
    math_verify_grade("\\boxed{1}", "1")
    table = [(b(p), g, ok) for p, g, ok in BOXED] + [(r, g, ok) for r, g, ok, _ in RESPONSES + REALISTIC]
    table = [t for t in table if len(t[0]) < 50_000]
    rl = rl_typical(args.n, args.seed)
    hard = hard_set()
    rows = []
    for name, items, labels, ours_fn in (
        (f"(a) RL-typical, {len(rl)} items", rl, None, rlvr_grade),
        ("(a) same, our caches emptied per item", rl, None, rlvr_grade_uncached),
        (f"(h) hard: notation kinds off the fast path, {len(hard)} items, caches emptied per item",
         [(r, g) for r, g, _ in hard], [ok for *_, ok in hard], rlvr_grade_uncached),
        (f"(b) hand-labelled table, {len(table)} items", [(r, g) for r, g, _ in table],
         [ok for *_, ok in table], rlvr_grade),
    ):
        (ours, ours_out), (theirs, theirs_out) = timed([ours_fn, math_verify_grade], items, args.repeats)
        if labels is None:  # no labels: report agreement between the graders instead
            acc = f"agree on {sum(a == c for a, c in zip(ours_out, theirs_out, strict=True)) / len(items):.1%}"
            acc_ours = acc_theirs = acc
        else:
            acc_ours = f"{sum(a == c for a, c in zip(ours_out, labels, strict=True)) / len(items):.1%}"
            acc_theirs = f"{sum(a == c for a, c in zip(theirs_out, labels, strict=True)) / len(items):.1%}"
        rows.append((name, ours, theirs, acc_ours, acc_theirs))
    print("| set | rlvr.grading items/s | Math-Verify items/s | speed-up | rlvr accuracy | Math-Verify accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ours, theirs, acc_ours, acc_theirs in rows:
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x | {acc_ours} | {acc_theirs} |")


if __name__ == "__main__":
    main()
