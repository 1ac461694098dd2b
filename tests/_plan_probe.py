"""Measure the native engine's peak memory on CPU for tests/test_plan.py (run as a script).

    python tests/_plan_probe.py '[{"preset": ..., "overrides": ...}, ...]' SCRATCH

For each config: RSS before the trainer is built, one full step (it allocates the gradients
and optimizer moments), then the peak RSS (VmHWM, reset through /proc/self/clear_refs) of the
second step's rollout and of its update, minus that RSS: the steady state the plan describes.
A step of the organism first pages in the code every step runs, and the test runs this with
glibc's mmap threshold low, so freed tensors leave RSS instead of a reused heap. Prints, per
config, measured and planned MiB by phase; the plan is taken at the prompt and response
lengths the step had (the plan's own figure is the worst case, every sequence at the limits).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
from pathlib import Path


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _peak_since_reset(before: int) -> float:
    return (_status("VmHWM") - before) / 2**20


def _reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def measure(cfg, scratch: Path) -> dict:
    from rlvr.rl.plan import make_plan, model_folder, read_shape
    from rlvr.rl.trainer import Trainer

    gc.collect()
    before = _status("VmRSS")
    trainer = Trainer(cfg, scratch)
    trainer.step()
    _reset()
    batch = trainer._rollout(2)
    rollout = _peak_since_reset(before)
    plan = trainer.prepare(batch)
    _reset()
    trainer._update(plan.batch, plan.adv, plan.rows)
    update = _peak_since_reset(before)
    real = dataclasses.replace(cfg, rollout=dataclasses.replace(
        cfg.rollout, max_prompt_tokens=max(len(ids) for ids in trainer.prompt_ids),
        max_new_tokens=int(batch.mask.sum(-1).max())))
    planned = make_plan(real, read_shape(model_folder(cfg.model.path)), engine="native",
                        gpu=None, out=None)
    del trainer, batch, plan
    return {"measured_mib": {"rollout": rollout, "update": update},
            "planned_mib": {k: sum(v.values()) * 1024 for k, v in planned.memory.items()}}


def main(argv: list[str]) -> None:
    import torch

    from rlvr.rl.presets import resolve
    from rlvr.rl.trainer import Trainer

    torch.set_num_threads(1)
    scratch = Path(argv[1])
    warm = Trainer(resolve("organism", overrides={
        "data": {"examples": ["organism-add:3"]}, "eval": {"suites": []},
        "algo": {"skip_no_signal": False}}), scratch / "warm")
    warm.step()
    del warm
    out = [measure(resolve(**spec), scratch / f"run{i}")
           for i, spec in enumerate(json.loads(argv[0]))]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
