"""bf16 weight-only snapshots for evaluation: `snapshots/step-N/`, beside the resumable
checkpoints (rlvr.rl.checkpoint).

A paper run keeps only its newest resumable checkpoints (fp32 weights + optimizer state,
18.5 GB each at 1.5B) and, at the steps `log.snapshot_steps` names, a Hugging Face folder of
bf16 weights and the tokenizer (3 GB at 1.5B) that `rlvr eval --run` reads like a checkpoint.
Written atomically, config.json last, as checkpoints are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from rlvr.rundir.write import atomic_dir

__all__ = ["save_snapshot", "snapshot_due"]


def snapshot_due(log_config, step: int) -> bool:
    return step in log_config.snapshot_steps


def save_snapshot(run_dir: Path, step: int, model, tokenizer) -> Path:
    """snapshots/step-N/ of `model` in bf16 (kept if it already exists: a resumed run)."""
    final = Path(run_dir) / "snapshots" / f"step-{step}"
    if (final / "config.json").is_file():
        return final
    state = {k: v.detach().to(torch.bfloat16) if v.is_floating_point() else v.detach()
             for k, v in model.state_dict().items()}
    with atomic_dir(final) as tmp:
        staging = tmp / ".staging"
        model.save_pretrained(staging, state_dict=state)
        tokenizer.save_pretrained(staging)
        config = json.loads((staging / "config.json").read_text())
        for key in ("dtype", "torch_dtype"):
            if key in config:
                config[key] = "bfloat16"
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "config.json"):
            os.replace(path, tmp / path.name)
        staging.rmdir()
    return final
