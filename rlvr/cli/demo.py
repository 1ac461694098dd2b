"""`rlvr demo`: the README's main job — 1-shot RLVR and its controls on the organism, dissected.

    rlvr demo [--out runs/demo] [--quick] [--seed 0] [--workers 2] [--model ORGANISM]

History run → anchor selection → six ablations (two at a time) → evaluation → report.html and
the decomposition table on the terminal. See rlvr/demo.py for the sizes.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rlvr.errors import UserError

__all__ = ["demo_command", "register"]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for every run and the "
                             "report (must not exist or be empty)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes that only check the plumbing "
                               "(CI)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every run."),
    workers: int = typer.Option(2, "--workers", help="Training processes side by side (one "
                                "torch thread each)."),
    model: Path | None = typer.Option(None, "--model", help="Another organism folder (`rlvr "
                                      "organism build`); default: the shipped one."),
) -> None:
    """Select an anchor, run the ablations on the organism, and show where the gain came from."""
    from rlvr.demo import run_demo

    if model is not None and not model.is_dir():
        raise UserError(f"model folder {model} does not exist",
                        "pass a folder written by `rlvr organism build`")
    result = run_demo(out, quick=quick, seed=seed, workers=workers, model=model)
    typer.echo(result.markdown)
    typer.echo(f"anchor: {result.anchor}")
    typer.echo(f"report: {result.report}")
    typer.echo(f"total time: {result.seconds:.0f} s")
