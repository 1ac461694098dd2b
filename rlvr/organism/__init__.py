"""The model organism: a tiny char-level LM pretrained on synthetic math with solution modes.

It is the embedded default model (`default_path()`): an ordinary Hugging Face checkpoint that
`AutoModelForCausalLM` / `AutoTokenizer` load, whose base behaviour is documented by its card.
See docs/organism.md. Heavy imports (torch, transformers) stay inside the submodules that need
them, so `import rlvr.organism` is cheap.
"""

from __future__ import annotations

from pathlib import Path

from rlvr.organism.config import BuildConfig, load_config, parse_mix
from rlvr.organism.modes import MARKERS, MODES, classify_mode
from rlvr.organism.tasks import FAMILIES, heldout_suite, organism_suites

__all__ = [
    "FAMILIES",
    "MARKERS",
    "MODES",
    "BuildConfig",
    "build",
    "classify_mode",
    "default_path",
    "heldout_suite",
    "load_config",
    "organism_suites",
    "parse_mix",
]


def default_path() -> Path:
    """The folder of the organism shipped inside the package."""
    return Path(__file__).resolve().parent / "default"


def build(config: BuildConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Pretrain an organism from `config` into the new folder `out` (with its card)."""
    from rlvr.organism.pretrain import build as _build

    return _build(config, out, progress=progress)
