"""The run's own copy of its training rows (`train_problems.jsonl`).

`--resume` reads it, so a run continues from any directory or machine; config.toml keeps the
source path for reference only. The report reads it to show the anchor.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlvr.errors import UserError
from rlvr.problem import Problem
from rlvr.rundir.write import atomic_write_text, read_jsonl

__all__ = ["SNAPSHOT", "read_snapshot", "write_snapshot"]

SNAPSHOT = "train_problems.jsonl"


def write_snapshot(run_dir: Path, problems: list[Problem]) -> None:
    atomic_write_text(Path(run_dir) / SNAPSHOT, "".join(
        json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in problems))


def read_snapshot(run_dir: Path) -> list[Problem] | None:
    """The training rows a run recorded, or None for a run written before snapshots existed."""
    path = Path(run_dir) / SNAPSHOT
    if not path.is_file():
        return None
    try:
        problems = [Problem.from_dict(row) for row in read_jsonl(path)]
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not a training snapshot ({exc})",
                        "restore it from a copy of the run") from exc
    if not problems:
        raise UserError(f"{path} holds no training rows", "restore it from a copy of the run")
    return problems
