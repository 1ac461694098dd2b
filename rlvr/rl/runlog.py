"""Where a training run's numbers go: metrics.jsonl, samples.jsonl, TensorBoard, W&B, a bar.

metrics.jsonl follows docs/run-format.md: one object per optimizer step. On resume, lines of
steps after the restored checkpoint (written before the kill) are dropped first, so the file
reads as if the run had never stopped; TensorBoard purges those steps the same way.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from rlvr.core.progress import bar
from rlvr.rundir.write import append_jsonl, atomic_write_text

__all__ = ["RunLog", "truncate_jsonl"]


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep lines whose `step` is ≤ last_step (and drop a torn last line)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if int(record.get("step", 0)) <= last_step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


class RunLog:
    def __init__(self, run_dir: Path, *, config_dict: dict, start_step: int, total_steps: int,
                 progress: bool, wandb: bool, wandb_project: str, samples_max: int):
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.samples_path = self.run_dir / "samples.jsonl"
        truncate_jsonl(self.metrics_path, start_step)
        truncate_jsonl(self.samples_path, start_step)
        self.samples_left = samples_max - _count_lines(self.samples_path)
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=start_step + 1)
        self.wandb = _start_wandb(self.run_dir, config_dict, wandb_project) if wandb else None
        self.latest = ""
        self._bar = contextlib.ExitStack()
        self.advance = self._bar.enter_context(
            bar("GRPO", total_steps, enabled=progress, keep=True, completed=start_step))

    def step(self, metrics: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, metrics)
        step = metrics["step"]
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and key != "step":
                self.tb.add_scalar(f"train/{key}", value, step)
        for example, acc in metrics["train_acc"].items():
            self.tb.add_scalar(f"train_acc/{example}", acc, step)
        if self.wandb is not None:
            flat = {f"train/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
            self.wandb.log(flat, step=step)
        self.latest = f"acc {metrics['train_acc_mean']:.2f}  reward {metrics['reward_mean']:.2f}"
        self.advance(info=self.latest)

    def phase(self, text: str) -> None:
        """What the current step is doing, beside the last step's numbers."""
        self.advance(0, info=f"{self.latest}  {text}".strip())

    def samples(self, records: list[dict]) -> None:
        for record in records[: max(0, self.samples_left)]:
            append_jsonl(self.samples_path, record)
            self.samples_left -= 1

    def evaluation(self, step: int, summary: dict) -> None:
        for suite, numbers in (summary.get("suites") or {}).items():
            for key in ("acc_strict", "acc_lenient"):
                if isinstance(numbers.get(key), (int, float)):
                    self.tb.add_scalar(f"eval/{suite}/{key}", numbers[key], step)
            for fmt, rate in (numbers.get("format_rates") or {}).items():
                self.tb.add_scalar(f"eval/{suite}/format_{fmt}", rate, step)
            for column, values in (numbers.get("groups") or {}).items():
                for value, group in values.items():  # rlvr.evaluation.groups: e.g. MATH500 by subject
                    self.tb.add_scalar(f"eval/{suite}/{column}={value}/acc_strict",
                                       group["acc_strict"], step)
        if self.wandb is not None:
            self.wandb.log({f"eval/{s}/acc_strict": n.get("acc_strict")
                            for s, n in (summary.get("suites") or {}).items()}, step=step)

    def close(self) -> None:
        self.tb.flush()
        self.tb.close()
        self._bar.close()
        if self.wandb is not None:
            self.wandb.finish()


def _count_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else 0


def _start_wandb(run_dir: Path, config_dict: dict, project: str):
    try:
        import wandb
    except ImportError:
        from rlvr.errors import UserError

        raise UserError("log.wandb = true but the wandb package is not installed",
                        "pip install wandb, or drop --set log.wandb=true") from None
    return wandb.init(project=project, name=run_dir.name, dir=str(run_dir), config=config_dict,
                      resume="allow")
