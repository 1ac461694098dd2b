"""`rlvr grade`: grade one response, or a jsonl file of them.

    rlvr grade --response '... \\boxed{12.8}' --gold 12.8 [--finish-reason length] [--json]
    rlvr grade FILE.jsonl [--out OUT.jsonl] [--force]

A file's lines are JSON objects with `response`, `gold` and optionally `finish_reason`. Each
output line is the input object with the Grade's fields added at the top level (the fields of
an eval record, see docs/run-format.md; a re-graded file gets its old decisions replaced).
Every line is checked before anything is graded or written; the output appears whole or not
at all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from rlvr.errors import UserError

__all__ = ["register"]

_TEXT_FIELDS = ("response", "gold")


def register(app: typer.Typer) -> None:
    app.command("grade")(grade_command)


def grade_command(
    file: Path | None = typer.Argument(
        None, help="A jsonl file with `response`, `gold` and optional `finish_reason` per line."),
    response: str | None = typer.Option(None, "--response", help="One response to grade."),
    gold: str | None = typer.Option(None, "--gold", help="The gold answer for --response."),
    finish_reason: str | None = typer.Option(
        None, "--finish-reason", help="The generator's finish reason (`length` = truncated)."),
    as_json: bool = typer.Option(False, "--json", help="Print the Grade as JSON."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the graded file (default: FILE.graded.jsonl)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    timeout_s: float = typer.Option(1.0, "--timeout", help="Deadline per item, in seconds."),
    workers: int | None = typer.Option(None, "--workers", help="Grading processes."),
) -> None:
    """Grade a response against a gold answer, or every line of a jsonl file."""
    if timeout_s <= 0:
        raise UserError(f"--timeout must be positive, got {timeout_s}")
    if file is not None:
        if response is not None or gold is not None or finish_reason is not None:
            raise UserError("give either FILE or --response/--gold, not both",
                            "--finish-reason goes in the file's `finish_reason` field")
        _grade_file(file, out=out, force=force, timeout_s=timeout_s, workers=workers,
                    as_json=as_json)
        return
    if out is not None:
        raise UserError("--out applies to a FILE", "drop --out or grade a jsonl FILE")
    if response is None or gold is None:
        raise UserError("nothing to grade", "give --response TEXT --gold TEXT, or a jsonl FILE")
    _grade_one(response, gold, finish_reason=finish_reason, timeout_s=timeout_s, as_json=as_json)


def _grade_one(response: str, gold: str, *, finish_reason: str | None, timeout_s: float,
               as_json: bool) -> None:
    from rlvr.grading import grade

    result = grade(response, gold, finish_reason=finish_reason, timeout_s=timeout_s)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Grade", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in result.to_dict().items():
        # Answers like "[1, 2)" or "[b]" are text, not rich markup.
        table.add_row(name, "—" if value is None else escape(str(value)))
    Console().print(table)


def _grade_file(path: Path, *, out: Path | None, force: bool, timeout_s: float,
                workers: int | None, as_json: bool) -> None:
    out = out if out is not None else path.with_name(_default_out_name(path))
    if out.exists() and not force:
        raise UserError(f"{out} already exists", "pass --force to overwrite it or choose --out")
    records = _read_rows(path)
    if not records:
        raise UserError(f"{path} holds no records", "give a jsonl file with one object per line")
    grades = _grade_rows(records, timeout_s=timeout_s, workers=workers)
    lines = [json.dumps({**row, **g.to_dict()}, ensure_ascii=False) for row, g in
             zip(records, grades, strict=True)]
    from rlvr.rundir.write import atomic_write_text

    atomic_write_text(out, "\n".join(lines) + "\n")
    summary = summarize(grades)
    if as_json:
        typer.echo(json.dumps({**summary, "out": str(out)}))
    else:
        _print_summary(summary, out)


def _default_out_name(path: Path) -> str:
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return f"{stem}.graded.jsonl"


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Parse and check every line first, so a bad line costs no grading and writes nothing."""
    from rlvr.data.suites import read_rows

    return [_check_row(row, f"{path}:{number}") for number, row in read_rows(path, what="jsonl file")]


def _check_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    for name in _TEXT_FIELDS:
        if name not in row:
            raise UserError(f"{where}: missing field {name!r}",
                            "each line needs `response` and `gold`")
    if not isinstance(row["response"], str):
        raise UserError(f"{where}: `response` must be a string, got {type(row['response']).__name__}")
    if isinstance(row["gold"], bool) or not isinstance(row["gold"], (str, int, float)):
        raise UserError(f"{where}: `gold` must be a string or a number, "
                        f"got {type(row['gold']).__name__}")
    reason = row.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise UserError(f"{where}: `finish_reason` must be a string or null")
    return row


def _grade_rows(rows: list[dict[str, Any]], *, timeout_s: float, workers: int | None) -> list:
    from rlvr.grading import grade_many

    pairs = [(r["response"], str(r["gold"]), r.get("finish_reason")) for r in rows]
    # One pool for the whole file (its workers take seconds to import sympy); grade_many
    # draws the rich progress bar.
    return grade_many(pairs, timeout_s=timeout_s, workers=workers, progress=True)


def summarize(grades: list) -> dict[str, Any]:
    """Counts of each format class, strict/lenient accuracy and timeouts over a list of Grades."""
    from rlvr.grading import FORMATS

    n = len(grades)
    formats = Counter(g.format for g in grades)
    return {
        "n": n,
        "formats": {name: formats.get(name, 0) for name in FORMATS},
        "acc_strict": sum(g.correct_strict for g in grades) / n if n else 0.0,
        "acc_lenient": sum(g.correct_lenient for g in grades) / n if n else 0.0,
        "timeouts": sum(g.timed_out for g in grades),
    }


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    n = summary["n"]
    table = Table(title=f"{n} responses graded → {out}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for name, count in summary["formats"].items():
        table.add_row(f"format: {name}", str(count), f"{count / n:.1%}")
    table.add_row("correct (strict)", str(round(summary["acc_strict"] * n)),
                  f"{summary['acc_strict']:.1%}")
    table.add_row("correct (lenient)", str(round(summary["acc_lenient"] * n)),
                  f"{summary['acc_lenient']:.1%}")
    table.add_row("timed out", str(summary["timeouts"]), f"{summary['timeouts'] / n:.1%}")
    Console().print(table)
