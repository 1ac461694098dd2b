"""Progress bars: every bar of a process shares one live display on stderr.

Rich allows one live display at a time, so two hand-built `Progress` objects (a training bar
and the evaluation bar inside it) cannot both show. `bar()` adds a line to the process's one
display, starting it for the first bar and stopping it when the last one ends; a bar made with
`keep=False` (the default) disappears when done. Bars advance from any thread.

Third-party bars (transformers' "Loading weights") are switched off by `quiet_third_party()`:
our output has our bars only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["bar", "quiet_third_party"]

_lock = threading.Lock()
_display: Any = None  # rich.progress.Progress while at least one bar is open
_open = 0


def _start() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    display = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                       console=Console(stderr=True))
    display.start()
    return display


@contextlib.contextmanager
def bar(description: str, total: int | None, *, enabled: bool = True, keep: bool = False,
        completed: int = 0) -> Iterator[Callable[..., None]]:
    """Yield `advance(k=1, info=None, description=None)`; a no-op when not `enabled`.

    `info` is a short text shown after the count (live metrics, the current phase).
    """
    global _display, _open
    if not enabled:
        yield lambda k=1, info=None, description=None: None
        return
    with _lock:
        if _display is None:
            _display = _start()
        display = _display
        _open += 1
        task = display.add_task(description, total=total, completed=completed, info="")

    def advance(k: int = 1, info: str | None = None, description: str | None = None) -> None:
        changes: dict[str, Any] = {"advance": k}
        if info is not None:
            changes["info"] = info
        if description is not None:
            changes["description"] = description
        display.update(task, **changes)

    try:
        yield advance
    finally:
        with _lock:
            if not keep:
                display.remove_task(task)
            _open -= 1
            if _open == 0:
                display.stop()
                _display = None


def quiet_third_party() -> None:
    """No transformers progress bars ("Loading weights"): the command shows its own."""
    from transformers.utils import logging

    logging.disable_progress_bar()
