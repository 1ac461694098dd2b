"""Checkpoints: a Hugging Face folder plus `trainer_state.pt`, written atomically; resume.

`checkpoints/step-N/` holds config.json, model.safetensors and the tokenizer files (any HF
code loads it) and `trainer_state.pt`: the optimizer state, the RNG states (torch, CUDA, python
`random`, numpy) and the step. The folder is built beside its final name and renamed into place
(`rlvr.rundir.write.atomic_dir`), so a run killed mid-save leaves the previous checkpoint, never a
half-written one. `trainer_state.pt` holds numpy RNG arrays, so it is read with
`weights_only=False`: load only checkpoints you wrote.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvr.rundir.write import atomic_dir, is_scratch

__all__ = ["STATE_FILE", "clean_scratch", "latest_checkpoint", "load_state", "prune", "save_checkpoint"]

STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: Path, step: int, model, tokenizer, optimizer) -> Path:
    final = Path(run_dir) / "checkpoints" / f"step-{step}"
    with atomic_dir(final) as tmp:
        # Written one level down and moved up config.json last: until the scratch folder is
        # complete it holds no config.json, so no Hugging Face loader takes it for a model.
        staging = tmp / ".staging"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        state = {"step": step, "optimizer": optimizer.state_dict(), "rng": rng_states()}
        torch.save(state, staging / STATE_FILE)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "config.json"):
            os.replace(path, tmp / path.name)
        staging.rmdir()
    return final


def clean_scratch(run_dir: Path) -> None:
    """Remove what a killed write left in a run (`.step-N.*.tmp`, `.step-N.old`, `.FILE.*.tmp`)."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            if is_scratch(child.name):
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The highest complete `checkpoints/step-N` (one with its trainer state), or None."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def load_state(checkpoint: Path, optimizer) -> int:
    """Restore the optimizer and RNG states saved beside the weights; return the step."""
    state = torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    set_rng_states(state["rng"])
    return int(state["step"])


def prune(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` checkpoints (0 keeps every one)."""
    if keep_last <= 0:
        return
    root = Path(run_dir) / "checkpoints"
    steps = sorted(int(m.group(1)) for c in root.iterdir() if (m := _STEP_DIR.match(c.name)))
    for step in steps[:-keep_last]:
        shutil.rmtree(root / f"step-{step}", ignore_errors=True)
