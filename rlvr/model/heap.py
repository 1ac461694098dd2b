"""Keep the memory of freed tensors in the process heap instead of handing it back to the OS.

glibc serves an allocation above its mmap threshold (128 KB, raised on the fly up to 32 MB) with
a fresh mapping, and gives freed memory at the top of the heap back once it passes the trim
threshold. A CPU decode or scoring step allocates and frees the same few hundred-KB tensors
every call (the organism's K/V gathers, the scoring stack's per-layer intermediates), so each
call pays the kernel to map, zero and unmap those pages again: on the organism's decode at
64 rows, 8k-46k page faults and up to an eighth of the time in the kernel over five calls,
against a handful of faults with the thresholds below (measured with `resource.getrusage`,
docs/benchmarks.md).

`keep_freed_memory()` sets the mmap threshold to glibc's largest (32 MB) and the trim
threshold to 1 GiB, once per process, when a CPU fast path (`rlvr.model.cpp_build`) is first
used; `RLVR_KEEP_HEAP=0` leaves the allocator as it was, and so does a process started with
its own glibc malloc settings (`MALLOC_*_` variables or `glibc.malloc` tunables: a user who
tuned the allocator, or a memory measurement that returns every freed page). The cost: the process keeps its peak
heap (freed memory is reused, not returned) until it exits. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit
_TRIM_THRESHOLD = 1 << 30
_STATE: dict = {}


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once); whether they are now in force."""
    if "applied" not in _STATE:
        _STATE["applied"] = _apply()
    return _STATE["applied"]


def _apply() -> bool:
    if os.environ.get("RLVR_KEEP_HEAP", "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    if _tuned_by_the_user(os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): leave it
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX))


def _tuned_by_the_user(env) -> bool:
    """Whether the process was started with its own glibc malloc settings."""
    return (any(key.startswith("MALLOC_") and key.endswith("_") for key in env)
            or "glibc.malloc." in env.get("GLIBC_TUNABLES", ""))
