"""verl's training parquet: read a pool into `Problem`s, write problems back in verl's schema.

The schema (verl 0.2 fork used by the paper, unchanged in verl 0.9) is one row per prompt:

    data_source   str
    prompt        list of chat messages {content, role}; the paper's pool has one user message
                  ending with the training suffix below
    ability       str ("math")
    reward_model  {ground_truth: str, style: "rule"}
    extra_info    {index: int, split: str}   index = the example's position in the pool

A 1-shot training file is one example repeated (the paper: 128 copies, so one step is 128
groups of 8 rollouts). `write_verl_parquet(..., copies=128)` writes exactly that.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from rlvr.errors import UserError
from rlvr.problem import Problem
from rlvr.rundir.write import atomic_write_bytes

__all__ = [
    "TEMPLATES",
    "MissingAnswer",
    "TRAIN_SUFFIX",
    "read_verl_parquet",
    "verl_rows",
    "write_verl_parquet",
]

TRAIN_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."

# How a problem becomes the user message of a verl row. "train-suffix" is the paper's training
# prompt; "plain" leaves the problem as is (the chat template's system prompt asks for a box).
TEMPLATES = {
    "train-suffix": lambda problem: f"{problem} {TRAIN_SUFFIX}",
    "plain": lambda problem: problem,
}


def _schema():
    import pyarrow as pa

    # Field order inside the structs matches the paper's dsr_sub.parquet (alphabetical, as
    # pandas wrote it), so a round-trip gives a byte-compatible schema.
    message = pa.struct([("content", pa.string()), ("role", pa.string())])
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(message)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([("index", pa.int64()), ("split", pa.string())])),
    ])


MissingAnswer = Literal["error", "skip", "keep"]


def read_verl_parquet(
    path: str | os.PathLike, *, suite: str | None = None, missing_answer: MissingAnswer = "error",
) -> list[Problem]:
    """Read a verl training parquet into Problems (id = str(extra_info.index)).

    A row whose ground_truth is absent or blank is an error naming the row by default; the
    paper's own pool has one (dsr_sub.parquet index 265, ground_truth ""). `missing_answer=
    "skip"` drops such rows (ids stay the pool indices, so π1 is still id "124"); `"keep"` keeps
    them with answer "" and `meta["missing_answer"] = True`, for ranking code that never grades
    (writing a training set from such a problem is still an error).

    The training suffix is stripped from the problem text and its exact tail (with the joining
    whitespace) kept in `meta["suffix"]`, so the problem renders through our own templates like
    any benchmark item. `meta` also keeps data_source, index, split, ability and the original
    prompt messages. `suite` defaults to the file's stem. A 1-shot file (one example × 128)
    reads as 128 equal Problems.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise UserError(f"verl parquet {path} does not exist", "check the --pool path")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise UserError(f"{path} is not a readable parquet file ({exc})") from exc
    missing = {"prompt", "reward_model"} - set(table.column_names)
    if missing:
        raise UserError(
            f"{path} lacks the verl column(s) {sorted(missing)}",
            "a verl training file has data_source, prompt, ability, reward_model, extra_info",
        )
    if missing_answer not in ("error", "skip", "keep"):
        raise UserError(f"unknown missing_answer {missing_answer!r}", "use error, skip or keep")
    suite = suite or path.stem
    problems = [_row_to_problem(row, number, path, suite, missing_answer) for number, row in
                enumerate(table.to_pylist())]
    return [p for p in problems if p is not None]


def _row_to_problem(row: dict, number: int, path: Path, suite: str,
                    missing_answer: MissingAnswer) -> Problem | None:
    where = f"{path} row {number}"
    extra = row.get("extra_info") or {}
    index = extra.get("index", number)
    if index is None:
        index = number
    reward_model = row.get("reward_model") or {}
    answer = reward_model.get("ground_truth")
    unanswered = answer is None or str(answer).strip() == ""
    if unanswered and missing_answer == "error":
        raise UserError(f"{where} (index {index}) has no reward_model.ground_truth",
                        "fix the row, or read with missing_answer='skip' to drop such rows")
    if unanswered and missing_answer == "skip":
        return None
    messages = row.get("prompt")
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    users = [m for m in (messages or []) if (m or {}).get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        raise UserError(f"{where} (index {index}) has no user message in `prompt`",
                        "prompt must be a list of {role, content} chat messages")
    text, suffix = _strip_suffix(users[-1]["content"])
    meta: dict[str, Any] = {
        "data_source": row.get("data_source"),
        "index": int(index),
        "split": extra.get("split"),
        "ability": row.get("ability"),
        "prompt": [dict(m) for m in messages],
        "suffix": suffix,
    }
    if unanswered:
        meta["missing_answer"] = True
    return Problem(id=str(index), problem=text, answer="" if unanswered else str(answer),
                   suite=suite, meta=meta)


def _strip_suffix(content: str) -> tuple[str, str | None]:
    # The pool joins problem and suffix with " " or "\n " depending on the source; the exact
    # tail is kept so that writing the problem back reproduces the row byte for byte.
    stripped = content.rstrip()
    if stripped.endswith(TRAIN_SUFFIX):
        text = stripped[: -len(TRAIN_SUFFIX)].rstrip()
        return text, content[len(text):]
    return content, None


def verl_rows(
    items: Iterable[Problem | Mapping[str, Any]],
    *,
    copies: int = 1,
    template: str = "train-suffix",
    data_source: str | None = None,
    split: str = "train",
) -> list[dict[str, Any]]:
    """The verl rows for `items` (Problems or Problem dicts), each repeated `copies` times.

    extra_info.index is the pool index when the problem came from a pool (meta["index"]),
    else the id when it is an integer, else the position in `items`.
    """
    if template not in TEMPLATES:
        raise UserError(f"unknown verl prompt template {template!r}",
                        f"choose one of {sorted(TEMPLATES)}")
    if copies < 1:
        raise UserError(f"copies must be at least 1, got {copies}")
    problems = [_as_problem(item, position) for position, item in enumerate(items)]
    if not problems:
        raise UserError("nothing to write: the selection is empty")
    rows = []
    for position, problem in enumerate(problems):
        row = {
            "data_source": data_source or problem.meta.get("data_source") or "rlvr",
            "prompt": [{"content": _render(problem, template), "role": "user"}],
            "ability": problem.meta.get("ability") or "math",
            "reward_model": {"ground_truth": problem.answer, "style": "rule"},
            "extra_info": {"index": _index_of(problem, position), "split": split},
        }
        rows.extend(row for _ in range(copies))
    return rows


def _render(problem: Problem, template: str) -> str:
    recorded = problem.meta.get("suffix")
    if template == "train-suffix" and isinstance(recorded, str) and TRAIN_SUFFIX in recorded:
        return problem.problem + recorded
    return TEMPLATES[template](problem.problem)


def _as_problem(item: Problem | Mapping[str, Any], position: int) -> Problem:
    if isinstance(item, Problem):
        problem = item
    elif isinstance(item, Mapping):
        for key in ("id", "problem", "answer"):
            if item.get(key) is None:
                raise UserError(f"item {position} has no {key!r}",
                                "each item needs id, problem and answer")
        problem = Problem.from_dict(dict(item))
    else:
        raise TypeError(f"expected Problem or mapping, got {type(item).__name__}")
    if not str(problem.answer).strip():
        raise UserError(f"item {position} (id {problem.id}) has no answer",
                        "a training example needs a gold answer")
    return problem


def _index_of(problem: Problem, position: int) -> int:
    index = problem.meta.get("index")
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    try:
        return int(problem.id)
    except ValueError:
        return position


def write_verl_parquet(
    items: Iterable[Problem | Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    copies: int = 1,
    template: str = "train-suffix",
    data_source: str | None = None,
    split: str = "train",
) -> Path:
    """Write `items` × `copies` as a verl training parquet, atomically. Returns the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = verl_rows(items, copies=copies, template=template, data_source=data_source,
                     split=split)
    table = pa.Table.from_pylist(rows, schema=_schema())
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
