"""Which files a PATH names, the step each belongs to, and the format of each.

A file is itself; a folder of per-checkpoint sub-folders (`global_step_100/`, `step-60/`,
`checkpoint-50/`: a name ending in a set-apart number) gives each sub-folder's files that step;
any other folder gives its files (searched below it). `.json` files are TTRL exports, `.jsonl`
files are told apart by their first readable line (`--format` names one for all).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlvr.data.responses import plain, qwen_eval, ttrl, verl_dump
from rlvr.data.responses.items import Parsed, jsonl_rows, read_json_file, step_in_name
from rlvr.errors import UserError

__all__ = ["IMPORT_FORMATS", "detect", "files_of", "parse_paths"]

IMPORT_FORMATS = ("auto", "qwen-eval", "ttrl", "verl-dump", "jsonl")
_SUFFIXES = (".jsonl", ".json")
MAX_FILES = 10_000


def files_of(path: Path) -> list[tuple[Path, int | None]]:
    """(file, the step its folder names or None) for one PATH argument."""
    if path.is_file():
        return [(path, None)]
    if not path.is_dir():
        raise UserError(f"{path} does not exist", "pass response files or folders of them")
    checkpoints = [d for d in sorted(path.iterdir()) if d.is_dir() and step_in_name(d.name)
                   is not None]
    if checkpoints:
        found = [(f, step_in_name(d.name)) for d in checkpoints for f in _files(d)]
    else:
        found = [(f, None) for f in _files(path)]
    if len(found) > MAX_FILES:
        raise UserError(f"{path} holds {len(found)} response files, over the {MAX_FILES} an "
                        "import reads", "import its sub-folders one at a time")
    return found


def _files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix in _SUFFIXES
                  and not f.name.startswith("."))


def detect(path: Path, problems: list[str]) -> tuple[str | None, object]:
    """(format, the parsed document for a `.json` file) or (None, None) with a line saying why."""
    if path.suffix == ".json":
        doc = read_json_file(path, problems)
        if doc is None:
            return None, None
        if ttrl.looks_like(doc):
            return "ttrl", doc
        problems.append(f"{path}: not a response file (a JSON object without a `metadata` "
                        "list, e.g. a harness's metrics); skipped")
        return None, None
    for _, row in jsonl_rows(path, []):
        for name, module in (("qwen-eval", qwen_eval), ("verl-dump", verl_dump),
                             ("jsonl", plain)):
            if module.looks_like(row):
                return name, None
        columns = ", ".join(sorted(row)[:8])
        problems.append(f"{path}: cannot tell its format (columns {columns}); skipped; pass "
                        "--format")
        return None, None
    problems.append(f"{path}: no readable line; skipped")
    return None, None


def parse_paths(paths: Sequence[Path], fmt: str = "auto", suite: str | None = None,
                gold=None) -> Parsed:
    """Every PATH's responses by step (steps of sub-folders and of verl dumps; else step 0).
    `gold`: a verl_dump.GoldIndex for dumps without `gts`."""
    if fmt not in IMPORT_FORMATS:
        raise UserError(f"unknown --format {fmt!r}", f"choose one of {', '.join(IMPORT_FORMATS)}")
    out = Parsed()
    for path in paths:
        for file, step in files_of(Path(path)):
            name, doc = (fmt, None) if fmt != "auto" else detect(file, out.problems)
            if name is None:
                continue
            parsed = _parse(name, file, suite, gold, doc)
            if step is not None and name != "verl-dump":
                parsed.steps = {step: [i for items in parsed.steps.values() for i in items]}
            out.merge(parsed)
    return out


def _parse(name: str, file: Path, suite: str | None, gold, doc) -> Parsed:
    if name == "ttrl":
        return ttrl.parse(file, suite, doc)
    if name == "verl-dump":
        return verl_dump.parse(file, suite, gold)
    if name == "qwen-eval":
        return qwen_eval.parse(file, suite)
    return plain.parse(file, suite)
