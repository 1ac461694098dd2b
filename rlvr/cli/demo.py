"""`rlvr demo`: the README's main job — 1-shot RLVR and its controls on the organism, dissected.

    rlvr demo [--out runs/demo] [--quick] [--seed 0] [--workers 2] [--model ORGANISM]
    rlvr demo --claim C8|C9 --out runs/demo   # extend a finished demo (rlvr/study/claim_commands.py)

History run → anchor selection → six ablations (two at a time) → evaluation → report.html and
the decomposition table on the terminal. See rlvr/study/demo.py for the sizes.
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
    claim: str | None = typer.Option(None, "--claim", help="Extend the finished demo in --out "
                                     "with a claim it does not run by itself: C8 (gain vs "
                                     "latent skill) or C9 (gain by anchor type)."),
) -> None:
    """Select an anchor, run the ablations on the organism, and show where the gain came from."""
    from rlvr.study.demo import run_demo

    if claim is not None:
        _claim(claim, out, workers)
        return
    if model is not None and not model.is_dir():
        raise UserError(f"model folder {model} does not exist",
                        "pass a folder written by `rlvr organism build`")
    result = run_demo(out, quick=quick, seed=seed, workers=workers, model=model)
    typer.echo(result.markdown)
    typer.echo(f"anchor: {result.anchor}")
    typer.echo(f"report: {result.report}")
    typer.echo(f"total time: {result.seconds:.0f} s")


def _claim(claim: str, out: Path, workers: int) -> None:
    import json
    import time

    from rlvr.study.claim_commands import CLAIM_COMMANDS, run_c8, run_c9

    claim = claim.upper()
    if claim not in CLAIM_COMMANDS:
        raise UserError(f"--claim {claim}: the demo runs C1-C7 itself",
                        f"choose one of {', '.join(CLAIM_COMMANDS)}")
    started = time.perf_counter()
    if claim == "C8":
        result = run_c8(out, workers=workers)
        rows = {k: f"working skill {v['working_skill']}, gains {v['gains']}"
                for k, v in result["levels"].items()}
    else:
        result = run_c9(out, workers=workers)
        rows = {k: f"{v['anchor']}: gains {v['gains']}" for k, v in result["anchor_types"].items()}
    typer.echo(json.dumps(result["claim"], indent=1))
    for name, row in rows.items():
        typer.echo(f"{name}: {row}")
    typer.echo(f"total time: {time.perf_counter() - started:.0f} s")
