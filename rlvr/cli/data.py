"""`rlvr data`: fetch the evaluation suites and the paper's training pool, list what is here.

    rlvr data list [--dir DIR]                      # known data sets; which DIR holds
    rlvr data fetch [NAMES...] [--out DIR]          # all seven when no name is given
    rlvr eval --model M --suites math500 --data-dir DIR
    rlvr train --model M --pool DIR/dsr_sub.parquet --example 124 --preset paper ...
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]

data_app = typer.Typer(help="Fetch the six math suites and the paper's training pool; list "
                            "what is present.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("fetch")
def fetch_command(
    names: list[str] | None = typer.Argument(None, help="Data sets to fetch (default: all): "
                                             "math500, aime24, aime25, amc23, minerva_math, "
                                             "olympiadbench, dsr_sub."),
    out: Path | None = typer.Option(None, "--out", help="Folder to write into (created; "
                                    "default: $RLVR_DATA_DIR, else ~/.cache/rlvr/data, where "
                                    "rlvr train and eval look without --data-dir)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files already there."),
) -> None:
    """Download data sets from their public sources, check their row counts, write them."""
    import os

    from rlvr.data.fetch import DATASETS, fetch
    from rlvr.data.suites import default_data_dir

    if out is None:
        out = Path(os.environ.get("RLVR_DATA_DIR") or default_data_dir())
    for path in fetch(list(names or []), out, overwrite=overwrite):
        name = next(d.name for d in DATASETS.values() if d.file == path.name)
        typer.echo(f"{name}: {DATASETS[name].rows} rows → {path}")
    typer.echo(f"use --data-dir {out} for the suites, --pool {out / 'dsr_sub.parquet'} for "
               "the training pool")


@data_app.command("list")
def list_command(
    folder: Path | None = typer.Option(None, "--dir", help="Folder to look in (default: "
                                       "$RLVR_DATA_DIR)."),
) -> None:
    """The known data sets, their sources and row counts, and which the folder holds."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from rlvr.data.fetch import status
    from rlvr.data.suites import resolve_data_dir

    folder = resolve_data_dir(folder)
    title = f"data sets in {folder}" if folder is not None else (
        "data sets (pass --dir DIR or set RLVR_DATA_DIR to see which are present)")
    table = Table(title=title)
    for column in ("name", "rows", "file", "here", "source", "what"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for row in status(folder):
        table.add_row(*(escape(str(row[key])) for key in ("name", "rows", "file", "state",
                                                          "source", "what")))
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)
    console.print(table)
