"""Long fuzz run of the grader: N seeded inputs, random and LaTeX-shaped (the same shapes as
tests/test_grader_fuzz.py). Counts failures of the grader's promises:

  raised       grade() raised (it must never)
  grader_error grade() caught an internal exception and graded "incorrect" (reason "grader error")
  bad_grade    a field of the wrong type or an unknown format class
  over_deadline  a call took longer than deadline + --slack seconds
  stall_after_timeout  the first such overrun after a timeout (a replacement worker starting)
  nondeterministic  every --recheck-th input is graded twice; differing non-timed-out Grades

and reports latency (max, p50, p99, p99.9) and the number of timeouts. Writes a JSON summary.

    nice -n 10 .venv/bin/python benchmarks/fuzz_grader.py --n 100000 --seed 0 \
        --out /tmp/fuzz_100k.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _fuzz_strategies import random_gold, random_latex, random_text  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn  # noqa: E402

from rlvr.grading import FORMATS, Grade, grade  # noqa: E402

FINISH_REASONS = (None, None, None, "stop", "length")


def make_input(rng: random.Random) -> tuple[str, str, str | None]:
    response = random_text(rng) if rng.random() < 0.3 else random_latex(rng)
    return response, random_gold(rng), rng.choice(FINISH_REASONS)


def well_formed(g: object) -> bool:
    return (isinstance(g, Grade) and g.format in FORMATS
            and all(isinstance(v, bool) for v in (g.correct_strict, g.correct_lenient, g.timed_out))
            and isinstance(g.reason, str)
            and all(v is None or isinstance(v, str) for v in (g.extracted, g.extracted_lenient))
            and (not g.correct_strict or g.extracted is not None))


def run(n: int, seed: int, deadline: float, slack: float, recheck: int) -> dict:
    rng = random.Random(seed)
    latencies: list[float] = []
    failures: Counter = Counter()
    examples: dict[str, list[str]] = {}
    formats: Counter = Counter()
    timeouts = 0
    pending_stall, last_timeout = False, -1

    def fail(kind: str, response: str, detail: str = "") -> None:
        failures[kind] += 1
        examples.setdefault(kind, [])
        if len(examples[kind]) < 5:
            examples[kind].append(f"{response[:120]!r} {detail}".strip())

    interactive = sys.stderr.isatty()  # a background run logs plain lines instead of a bar
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("fuzzing grade()", total=n)
        for i in range(n):
            response, gold, finish = make_input(rng)
            start = time.perf_counter()
            try:
                g = grade(response, gold, finish_reason=finish, timeout_s=deadline)
            except Exception:  # the promise under test is "never raises": count, keep going
                fail("raised", response, traceback.format_exc(limit=1).splitlines()[-1])
                bar.advance(task)
                continue
            elapsed = time.perf_counter() - start
            latencies.append(elapsed)
            if elapsed > deadline + slack:
                # The grader replaces a timed-out worker; the next call that needs one waits for
                # its start-up. Attribute the first overrun after each timeout to that stall.
                kind = "stall_after_timeout" if pending_stall else "over_deadline"
                pending_stall = False
                fail(kind, response, f"{elapsed:.2f}s ({i - last_timeout} calls after a timeout)")
            if not well_formed(g):
                fail("bad_grade", response, repr(g)[:200])
                bar.advance(task)
                continue
            if g.reason.startswith("grader error"):
                # grade() caught its own bug: the promise held, but the Grade is not a decision.
                fail("grader_error", response, g.reason)
            formats[g.format] += 1
            timeouts += g.timed_out
            if g.timed_out:
                pending_stall, last_timeout = True, i
            if recheck and i % recheck == 0:
                again = grade(response, gold, finish_reason=finish, timeout_s=deadline)
                if not (g.timed_out or again.timed_out) and again != g:
                    fail("nondeterministic", response)
            bar.advance(task)
            if not interactive and (i + 1) % 5_000 == 0:
                print(f"{i + 1}/{n} graded, failures: {dict(failures)}", file=sys.stderr, flush=True)
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {
        "n": n, "seed": seed, "deadline_s": deadline, "slack_s": slack, "recheck_every": recheck,
        "failures": dict(failures), "failure_examples": examples, "timeouts": timeouts,
        "formats": dict(formats),
        "latency_s": {"max": pct(1.0), "p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999),
                      "mean": sum(latencies) / len(latencies) if latencies else 0.0},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=1.0, help="grade()'s timeout_s")
    parser.add_argument("--slack", type=float, default=0.5,
                        help="allowed overrun before a call counts as over the deadline")
    parser.add_argument("--recheck", type=int, default=10,
                        help="grade every k-th input twice (0: never)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    args = parser.parse_args()
    # Start the grader's worker process first: its start-up (importing sympy, seconds on a busy
    # machine) is not part of any call's deadline and would otherwise be the max latency.
    warm_start = time.perf_counter()
    grade("\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}")
    warm_s = time.perf_counter() - warm_start
    started = time.time()
    summary = run(args.n, args.seed, args.deadline, args.slack, args.recheck)
    summary["wall_s"] = round(time.time() - started, 1)
    summary["warmup_s"] = round(warm_s, 2)
    summary["command"] = "python benchmarks/fuzz_grader.py " + " ".join(sys.argv[1:])
    text = json.dumps(summary, indent=2, ensure_ascii=True)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
