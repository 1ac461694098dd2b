"""`rlvr demo`: the README's main job — 1-shot RLVR and its controls on the organism, dissected.

    rlvr demo [--out runs/demo] [--quick] [--seed 0] [--workers 2] [--model ORGANISM]
    rlvr demo --claim robust|C10 --out runs/demo   # extend a finished demo (rlvr/study/claim_commands.py)

History runs → anchors by kind → the conditions on two anchors, C8, C9 (two at a time) →
claims per anchor kind, report.html and the decomposition tables on the terminal. See rlvr/study/demo.py for the sizes.
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
                                     "with a study it does not run by itself: robust (every "
                                     "training verdict at lr ×0.5 and ×2) or C10 (random "
                                     "reward where clipping can act)."),
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
    for kind, anchor in result.anchors.items():
        typer.echo(f"{kind} anchor: {anchor or 'none in the pool'}")
    typer.echo(f"report: {result.report}")
    typer.echo(f"total time: {result.seconds:.0f} s")
    if quick:
        from rlvr.study.demo import PLUMBING

        typer.echo(PLUMBING)


def _claim(claim: str, out: Path, workers: int) -> None:
    import json
    import time

    from rlvr.study.claim_commands import CLAIM_COMMANDS, run_c10, run_robust

    name = {k.lower(): k for k in CLAIM_COMMANDS}.get(claim.lower())
    if name is None:
        raise UserError(f"--claim {claim}: the demo runs C1-C9 itself",
                        f"choose one of {', '.join(CLAIM_COMMANDS)}")
    started = time.perf_counter()
    if name == "C10":
        typer.echo(json.dumps(run_c10(out, workers=workers)["claim"], indent=1))
    else:
        for row in run_robust(out, workers=workers)["claims"]:
            if row.get("sensitivity"):
                values = ", ".join(f"×{s['lr_factor']:g}: {s['verdict']}"
                                   for s in row["sensitivity"])
                typer.echo(f"{row['id']} {row['anchor_kind']}: {row['verdict']} → "
                           f"{row['robust']} ({values})")
    typer.echo(f"total time: {time.perf_counter() - started:.0f} s")
