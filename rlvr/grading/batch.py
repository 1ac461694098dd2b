"""Grade many pairs in a pool of worker processes, each item under its own deadline.

Each worker runs the whole grader (fast path and Math-Verify in-process); the parent gives
every item `timeout_s` once its worker is ready, and kills and replaces a worker that overruns
(the item gets a timed-out Grade). Threads here only wait on pipes, so the pool uses `workers`
CPU cores. Results come back in input order and are the same as `grade` on each pair.
The pool of each size persists between calls (a trainer grades every step; starting Python
and sympy again each time would cost seconds), is re-created after a fork and closed at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence

from rlvr.core.progress import bar
from rlvr.grading.deadline import DeadlineExceeded, WorkerFailed, WorkerPool
from rlvr.grading.grader import Grade

# Slack for the round trip on a busy machine; the grader's own bound is timeout_s.
ROUND_TRIP_SLACK_S = 0.5


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def batch_pool(size: int) -> WorkerPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None or pool.pid != os.getpid():
            pool = _POOLS[size] = WorkerPool(size, bound_startup=False)
        return pool


@atexit.register
def _shutdown() -> None:
    for pool in _POOLS.values():
        if pool.pid == os.getpid():
            pool.close()


def _one(pool: WorkerPool, item: tuple, timeout_s: float) -> Grade:
    response, gold = item[0], item[1]
    finish = item[2] if len(item) > 2 else None
    request = {
        "op": "grade",
        "response": "" if response is None else str(response),
        "gold": gold if isinstance(gold, (str, int, float, list)) or gold is None else str(gold),
        "finish_reason": finish,
        "timeout_s": timeout_s,
    }
    try:
        reply = pool.call(request, timeout_s + ROUND_TRIP_SLACK_S)
        return Grade(**reply["grade"])
    except DeadlineExceeded:
        reason = f"grading exceeded the {timeout_s:g} s deadline (worker replaced)"
        return Grade(None, None, "no_answer", False, False, True, reason)
    except (WorkerFailed, KeyError, TypeError):
        return Grade(None, None, "no_answer", False, False, False, "grader worker failed")


def grade_many(
    pairs: Sequence[tuple[str, str] | tuple[str, str, str | None]],
    *,
    timeout_s: float = 1.0,
    workers: int | None = None,
    progress: bool = False,
) -> list[Grade]:
    """Grade (response, gold[, finish_reason]) pairs in a process pool; input order kept."""
    items = list(pairs)
    if not items:
        return []
    size = max(1, min(workers or os.cpu_count() or 1, len(items)))
    pool = batch_pool(size)
    results: list = [None] * len(items)
    lock = threading.Lock()
    cursor = iter(range(len(items)))

    def run(advance) -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            results[i] = _one(pool, items[i], timeout_s)
            advance()

    with bar("grading", len(items), enabled=progress) as advance:
        threads = [threading.Thread(target=run, args=(advance,), daemon=True)
                   for _ in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results
