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


def test_a_process_started_with_its_own_malloc_settings_keeps_them():
    from rlvr.model import heap

    assert heap._tuned_by_the_user({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert heap._tuned_by_the_user({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert not heap._tuned_by_the_user({"MALLOC_CHECK": "1", "GLIBC_TUNABLES": "glibc.rtld.x=1"})
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "0", "OMP_NUM_THREADS": "1"}
    said = subprocess.run([sys.executable, "-c", "from rlvr.model import heap; "
                           "print(heap.keep_freed_memory())"], env=env, capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()
    assert said == "False"
