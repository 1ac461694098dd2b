"""The extras install together: every extra that names trl or vllm bounds it (docs/gpu.md)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BOUNDED = ("trl", "vllm")


def _extras() -> dict[str, list[Requirement]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: [Requirement(r) for r in reqs]
            for name, reqs in data["project"]["optional-dependencies"].items()}


def _upper_bounded(req: Requirement) -> bool:
    return any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier)


def test_every_extra_bounds_trl_and_vllm():
    named = [(extra, r) for extra, reqs in _extras().items() for r in reqs if r.name in BOUNDED]
    assert {r.name for _, r in named} == set(BOUNDED)
    unbounded = [f"{extra}: {r}" for extra, r in named if not _upper_bounded(r)]
    assert not unbounded, f"unbounded in pyproject extras: {unbounded}"


def test_the_ranges_are_the_ones_read_from_the_registry():
    reqs = {r.name: r for extra in _extras().values() for r in extra}
    trl, vllm, transformers = reqs["trl"], reqs["vllm"], reqs["transformers"]
    # TRL 1.16 declares vllm>=0.22.0,<=0.31.0; vLLM 0.32+ is outside it, 0.33+ pins torch 2.14
    assert Version("1.16.0") in trl.specifier and Version("1.17.0") not in trl.specifier
    assert Version("0.31.0") in vllm.specifier and Version("0.32.0") not in vllm.specifier
    assert Version("0.26.0") not in vllm.specifier  # pins torch==2.11.0
    # vLLM 0.31.0 declares transformers>=5.10.4,<5.18.0
    assert Version("5.17.0") in transformers.specifier
    assert Version("5.18.0") not in transformers.specifier


def test_the_docs_table_names_the_ranges():
    text = (ROOT / "docs" / "gpu.md").read_text()
    for spec in ("trl>=1.16,<1.17", "vllm>=0.28,<=0.31.0", "transformers>=5.10.4,<5.18"):
        assert re.search(re.escape(spec), text), spec
