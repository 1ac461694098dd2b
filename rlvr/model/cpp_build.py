"""Building the project's C++ kernels (`native_step`, `native_score`) once per machine.

Each is compiled from its `.cpp` file beside the module, after the shared `native_common.h`
(both package data), by
`torch.utils.cpp_extension` on first use and cached by torch under `TORCH_EXTENSIONS_DIR`
(default `~/.cache/torch_extensions`). A failed build (no compiler, no ninja, a compile error)
returns None after one notice naming the cause, and the caller keeps its eager torch path:
slower on a CPU, never wrong.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from rlvr.model import heap

__all__ = ["build_or_none", "compile_module", "flavour"]


def flavour(base: str) -> tuple[str, list[str]]:
    """The extension's name and vector flags: AVX2 + FMA (+ F16C) where torch itself runs its
    AVX2 (or AVX-512) kernels on this CPU, else the compiler's portable baseline. The name
    carries the choice, so a build folder shared by different CPUs never loads the wrong one."""
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        # F16C (fp16 <-> fp32, rlvr.model.native_step.cache_dtype) came with every AVX2 CPU
        return f"{base}_avx2", ["-mavx2", "-mfma", "-mf16c"]
    return base, []


def compile_module(base: str, source: Path, functions: list[str], what: str, switch: str,
                   extra_cflags: tuple[str, ...] = (), headers: tuple[str, ...] = ()):
    """The compiled extension (raises on a failed build); a line on stderr when it has to be
    built, since that takes about a minute. `headers` (file names beside this module) come
    between the shared header and `source`."""
    from torch.utils import cpp_extension

    name, flags = flavour(base)
    # A private helper of torch, used only to word the note: without it the note is shown.
    folder_of = getattr(cpp_extension, "_get_build_directory", None)
    if folder_of is None or not os.path.exists(os.path.join(folder_of(name, verbose=False),
                                                            f"{name}.so")):
        print(f"rlvr: compiling the C++ {what} once for this machine (about a minute; "
              f"{switch}=0 skips it)", file=sys.stderr, flush=True)
    pieces = [Path(__file__).with_name(header).read_text()
              for header in ("native_common.h", *headers)]
    return cpp_extension.load_inline(name, cpp_sources=[*pieces, source.read_text()],
                                     functions=functions,
                                     extra_cflags=["-O3", *extra_cflags, *flags], verbose=False)


def build_or_none(compile_fn, what: str, fallback: str, switch: str):
    """`compile_fn()`'s module, or None after one notice with the cause of a failed build: the
    work goes on on the eager path, only slower, and a user should not have to wonder why."""
    try:
        module = compile_fn()
    except Exception as exc:  # noqa: BLE001 - no compiler or ninja, a build error
        from rlvr.errors import notice

        cause = (str(exc).strip().splitlines() or [""])[0][:200]
        notice(f"the C++ {what} could not be built ({type(exc).__name__}: {cause}); {fallback}, "
               f"slower on CPU ({switch}=0 skips the attempt)")
        return None
    # the C++ paths allocate and free the same large tensors every call (rlvr.model.heap)
    heap.keep_freed_memory()
    return module
