"""A run's accuracy on the terminal: the last evaluation's table and the curve over steps.

`rlvr eval --run` and the end of `rlvr train` print the same tables, read from the run's
eval/step-N/summary.json files (docs/run-format.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["evaluated_steps", "print_over_steps", "print_run_accuracy"]

_STEP_DIR = re.compile(r"^step-(\d+)$")


def evaluated_steps(run: Path) -> list[tuple[int, dict]]:
    """(step, summary) of every fully evaluated step of a run, in step order."""
    rows = []
    root = Path(run) / "eval"
    if not root.is_dir():
        return rows
    for folder in root.iterdir():
        match = _STEP_DIR.match(folder.name)
        if match and (folder / "summary.json").is_file():
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            rows.append((int(match.group(1)), summary))
    return sorted(rows, key=lambda row: row[0])


def print_run_accuracy(run: Path) -> None:
    """The newest evaluation's table, then accuracy over steps (when there are several)."""
    from rlvr.evaluation.evaluate import print_summary

    rows = evaluated_steps(run)
    if not rows:
        print(f"{run} has no evaluation (run `rlvr eval --run {run}` on its checkpoints)")
        return
    print_summary(rows[-1][1])
    print_over_steps(run, list(rows[-1][1].get("suites") or {}))


def print_over_steps(run: Path, suites: list[str]) -> None:
    """Test accuracy (strict, headline) of every evaluated step: the run's learning curve."""
    from rich.console import Console
    from rich.table import Table

    from rlvr.evaluation.evaluate import overall

    rows = evaluated_steps(run)
    if len(rows) < 2:
        return
    table = Table(title=f"{run}: strict accuracy (%) over steps")
    table.add_column("step", justify="right")
    for suite in suites:
        table.add_column(suite, justify="right")
    table.add_column("average", justify="right")
    for step, summary in rows:
        cells = [summary["suites"].get(suite, {}).get("acc_strict") for suite in suites]
        table.add_row(str(step), *("—" if c is None else f"{100 * c:.1f}" for c in cells),
                      f"{100 * overall(summary)['acc_strict']:.1f}")
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    console.print(table)
