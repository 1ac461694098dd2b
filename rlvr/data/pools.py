"""Pools of problems and the training sets made from them.

`load_pool` is the one reader of pools (`rlvr train --pool`, `rlvr select`, `rlvr export verl
--pool`); `write_training_set` writes the repeated 1-shot file the paper trains on (π1 × 128).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from rlvr.errors import UserError
from rlvr.problem import Problem

__all__ = ["load_pool", "read_problems", "training_set", "write_training_set"]


def load_pool(spec: str | os.PathLike) -> list[Problem]:
    """A pool: a verl parquet, a jsonl of Problems, or an organism suite (`organism-add[:N]`).

    The one reader of pools: `rlvr train --pool`, `rlvr select` and `rlvr export verl --pool`
    accept the same things. Parquet rows with a blank ground truth are kept (flagged
    `meta["missing_answer"]`) so a history over the whole pool still ranks; choosing one of
    them for training is an error.
    """
    text = str(spec)
    if Path(text).suffix in (".parquet", ".jsonl"):
        problems = read_problems(Path(text))
    elif text.startswith("organism-"):
        problems = _organism_pool(text)
    else:
        raise UserError(f"cannot read pool {text!r}",
                        "give a .parquet (verl), a .jsonl of problems, or organism-FAMILY[:N]")
    if all(p.meta.get("missing_answer") for p in problems):
        raise UserError(f"pool {text} has no answers", "a pool needs gold answers to train on")
    return _dedupe(problems, text)


def read_problems(path: Path, *, what: str = "pool") -> list[Problem]:
    """Every row of a verl parquet or a jsonl of problems, repeats included, in file order.

    A jsonl line needs `problem` and `answer`; `id` defaults to the line number. A line that
    is not JSON is an error, as in every user file (`rlvr.data.suites.read_rows`).
    """
    path = Path(path)
    if path.suffix == ".parquet":
        if not path.is_file():
            raise UserError(f"{what} {path} does not exist")
        from rlvr.data.verl_parquet import read_verl_parquet

        return read_verl_parquet(path, missing_answer="keep")
    from rlvr.data.suites import read_rows

    problems = []
    for number, row in read_rows(path, what=what):
        for key in ("problem", "answer"):
            if not isinstance(row, Mapping) or row.get(key) is None or str(row[key]) == "":
                raise UserError(f"{path}:{number} has no {key!r}",
                                "each line needs problem and answer; id is optional")
        problems.append(Problem.from_dict({"id": number, "suite": path.stem, **row}))
    if not problems:
        raise UserError(f"{what} {path} holds no problems")
    return problems


def _organism_pool(text: str) -> list[Problem]:
    from rlvr.organism.tasks import organism_suites

    name, _, count = text.partition(":")
    suites = organism_suites()
    if name not in suites:
        raise UserError(f"unknown organism suite {name!r}", f"choose one of {', '.join(suites)}")
    if count and not count.isdigit():
        raise UserError(f"pool size in {text!r} must be an integer", "e.g. organism-add:16")
    return suites[name](n=int(count)) if count else suites[name]()


def _dedupe(problems: Iterable[Problem], source: str) -> list[Problem]:
    # A 1-shot training file repeats one example; equal copies collapse, conflicting ones don't.
    seen: dict[str, Problem] = {}
    for p in problems:
        other = seen.setdefault(p.id, p)
        if other is not p and (other.problem, other.answer) != (p.problem, p.answer):
            raise UserError(f"pool {source} has two different examples with id {p.id!r}")
    return list(seen.values())


def training_set(problems: Sequence[Problem], copies: int) -> list[Problem]:
    """Each problem repeated `copies` times, in order: the paper's 1-shot file is π1 × 128."""
    if copies < 1:
        raise UserError(f"--copies must be at least 1, got {copies}")
    return [p for p in problems for _ in range(copies)]


def write_training_set(problems: Sequence[Problem], out: str | os.PathLike, *, copies: int,
                       fmt: Literal["jsonl", "verl"] = "jsonl") -> Path:
    """Write the repeated set atomically: our jsonl (id, problem, answer, suite, meta) or verl."""
    out = Path(out)
    rows = training_set(problems, copies)
    if fmt == "verl":
        from rlvr.data.verl_parquet import write_verl_parquet

        return write_verl_parquet(problems, out, copies=copies)
    if fmt != "jsonl":
        raise UserError(f"unknown training-set format {fmt!r}", "choose jsonl or verl")
    from rlvr.rundir.write import atomic_write_text

    text = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in rows)
    atomic_write_text(out, text)
    return out
