"""What every response format parses into, and the bounded readers they share."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["END_MARKERS", "MAX_FILE_BYTES", "MAX_LINE_BYTES", "MAX_RESPONSES", "Item", "Parsed", "Response",
           "gold_text", "harness_label", "jsonl_rows", "read_json_file", "step_in_name", "texts"]

# Reading is bounded: a file, a line and the responses of one item each have a ceiling, past
# which the file or line is named as unreadable and the rest is imported.
MAX_FILE_BYTES = 2 << 30
MAX_LINE_BYTES = 64 << 20
MAX_RESPONSES = 4096


# End-of-turn and padding tokens a harness may leave in decoded text. What follows the first
# one is not the model's answer (rlvr eval stops generating there), and a tail of padding would
# read as a loop.
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>",
               "<｜end▁of▁sentence｜>")


@dataclass
class Response:
    text: str
    harness_correct: bool | None = None  # the harness's own label, kept beside ours
    finish_reason: str = "unknown"  # formats that do not record it; the grader reads the text

    def __post_init__(self) -> None:
        cut = min((i for i in (self.text.find(m) for m in END_MARKERS) if i >= 0), default=-1)
        if cut >= 0:
            self.text = self.text[:cut]
            if self.finish_reason == "unknown":
                self.finish_reason = "stop"  # an end-of-turn marker: the model stopped


@dataclass
class Item:
    suite: str
    id: str
    gold: str | None
    responses: list[Response]
    problem: str = ""
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class Parsed:
    """Items by step, what could not be read (one line each), and the decoding the files say."""

    steps: dict[int, list[Item]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    temperature: float | None = None
    model: str | None = None

    def add(self, step: int, item: Item) -> None:
        self.steps.setdefault(step, []).append(item)

    def merge(self, other: Parsed) -> None:
        for step, items in other.steps.items():
            self.steps.setdefault(step, []).extend(items)
        self.problems.extend(other.problems)
        self.temperature = other.temperature if self.temperature is None else self.temperature
        self.model = other.model if self.model is None else self.model


_INTEGRAL = re.compile(r"^[+-]?\d+\.0*$")


def gold_text(value: Any) -> str | None:
    """A gold as the harness stored it → the text our grader compares with. `142.0` (AMC) is
    142 and `025` (AIME) stays as written: the grader reads both as the integers they are."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        parts = [t for t in (gold_text(v) for v in value) if t]
        return ", ".join(parts) or None
    text = str(value).strip()
    if _INTEGRAL.match(text):
        text = text.split(".")[0]
    return text or None


def harness_label(value: Any) -> bool | None:
    """A harness's correctness label (a bool, 0/1, a reward) → bool; None when absent/unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value > 0
    return None


_STEP_NAME = re.compile(r"(?:^|[_-])(?:global_step|step|checkpoint|ckpt|iter|epoch)?[_-]?(\d+)$",
                        re.IGNORECASE)


def step_in_name(name: str) -> int | None:
    """The step a checkpoint folder or dump file names by its trailing number (`global_step_100`,
    `checkpoint-50`, `step120`, `120.jsonl`); None without one. A suite folder such as
    `math500` or `aime24` names no step: its number is not set apart."""
    match = _STEP_NAME.search(Path(name).stem if name.endswith((".jsonl", ".json")) else name)
    return int(match.group(1)) if match else None


def _too_big(path: Path) -> str | None:
    size = path.stat().st_size
    return (f"{path}: {size / 2**30:.1f} GiB is over the {MAX_FILE_BYTES / 2**30:.0f} GiB an "
            "import reads; split it") if size > MAX_FILE_BYTES else None


def jsonl_rows(path: Path, problems: list[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) per readable line; each unreadable line is one entry in
    `problems`, and reading goes on."""
    if (why := _too_big(path)) is not None:
        problems.append(why)
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if len(raw) > MAX_LINE_BYTES:
                problems.append(f"{path}:{number}: a line over {MAX_LINE_BYTES >> 20} MiB; skipped")
                continue
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problems.append(f"{path}:{number}: not UTF-8 text; skipped")
                continue
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not valid JSON ({exc.msg}); skipped")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{number}: not a JSON object; skipped")
                continue
            yield number, row


def read_json_file(path: Path, problems: list[str]) -> Any:
    """One JSON document; None (and one entry in `problems`) when it cannot be read."""
    if (why := _too_big(path)) is not None:
        problems.append(why)
        return None
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{path}: not UTF-8 text; skipped")
    except json.JSONDecodeError as exc:
        problems.append(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); skipped")
    return None


def texts(value: Any) -> list[str] | None:
    """A response or a list of them → strings (None when neither)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value[:MAX_RESPONSES])
    return None
