"""rlvr.model.heap: with the thresholds raised, a loop that allocates and frees tensors of the
sizes a CPU step uses no longer faults pages in from the kernel every round."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A fresh process each (the thresholds are process-wide): ten 4 MB tensors made and freed 20
# times, after 3 rounds of warm-up; prints whether the setting applied and the minor page
# faults of the 20 rounds. By default glibc hands the freed 40 MB back (more than twice its
# largest chunk yet) and faults it in again next round.
_LOOP = """
import resource, sys, torch
from rlvr.model import heap
applied = heap.keep_freed_memory()
def rounds(n):
    for _ in range(n):
        kept = [torch.ones(1 << 20) for _ in range(10)]
        del kept
rounds(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(20)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
import ctypes
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
info = ctypes.CDLL(None).mallinfo2
info.restype = Info
print(applied, faults, info().fordblks)
"""


def _faults(keep: str) -> tuple[bool, int, int]:
    env = {**os.environ, "RLVR_KEEP_HEAP": keep, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _LOOP], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_reused_without_page_faults():
    applied, faults, free_in_heap = _faults("1")
    assert applied
    # 20 rounds touch 200k pages; kept in the heap they fault none (a few from the runtime),
    # and the freed 40 MB stay there for the next round
    assert faults < 50, faults
    assert free_in_heap >= 40 << 20
    assert not _faults("0")[0]  # RLVR_KEEP_HEAP=0 leaves glibc as it was
