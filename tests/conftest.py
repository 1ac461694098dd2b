"""Shared fixtures. Data in ../shared is optional: tests that need it skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One torch thread per process: on our 2-core machines that is faster than two threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("RLVR_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "data").is_dir():
        pytest.skip(f"{SHARED_DIR}/data is absent (a plain clone has no ../shared)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def benchmarks_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "benchmarks"


@pytest.fixture(scope="session")
def train_pool_path(shared_dir: Path) -> Path:
    return shared_dir / "data" / "train" / "dsr_sub.parquet"


def pytest_sessionstart(session) -> None:
    """Build the C++ decode step (rlvr.model.native_step) and scoring forward
    (rlvr.model.native_score) before any test runs: on a fresh machine their one-time build
    notes would otherwise land in whichever test's stderr decodes or scores first
    (subprocesses reuse the builds cached by torch)."""
    from rlvr.model import native_score, native_step

    native_step.step_function()
    native_score.kernels()
