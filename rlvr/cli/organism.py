"""`rlvr organism build | path | card`: make, locate and describe model organisms."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]

organism_app = typer.Typer(help="Build, locate and describe model organisms (tiny char-level LMs).",
                           no_args_is_help=True)


@organism_app.command("build")
def build_command(
    out: Path = typer.Option(..., "--out", help="New folder for the checkpoint (must not exist)."),
    config: Path | None = typer.Option(None, "--config", help="Build config TOML (see docs/organism.md)."),
    mix: list[str] = typer.Option([], "--mix", help="FAMILY=w_work,w_guess,w_unboxed,w_loop (repeatable)."),
    seed: int | None = typer.Option(None, "--seed", help="Build seed (corpus, init, batch order)."),
    steps: int | None = typer.Option(None, "--steps", help="Pretraining steps (overrides the config)."),
) -> None:
    """Pretrain an organism deterministically from a seed and write it with its card."""
    import dataclasses

    from rlvr.errors import UserError
    from rlvr.organism import build, load_config, parse_mix

    if out.exists():
        raise UserError(f"output folder {out} already exists", "choose a new --out")
    cfg = load_config(config).with_overrides(seed=seed, mix=dict(parse_mix(m) for m in mix))
    if steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps))
    build(cfg, out)
    typer.echo(f"organism written to {out}")
    typer.echo((out / "card.md").read_text(encoding="utf-8"))


@organism_app.command("path")
def path_command() -> None:
    """Print the folder of the organism shipped inside the package."""
    from rlvr.organism import default_path

    typer.echo(str(default_path()))


@organism_app.command("card")
def card_command(
    path: Path | None = typer.Argument(None, help="Organism folder (default: the shipped one)."),
    as_json: bool = typer.Option(False, "--json", help="Print card.json instead of the table."),
    remeasure: bool = typer.Option(
        False, "--remeasure",
        help="Measure the card again with the current grader and rewrite it (the weights and "
             "the build facts are kept); use after a grading change."),
) -> None:
    """Print an organism's card (measured when it was built, or again with --remeasure)."""
    import json

    from rlvr.organism import default_path
    from rlvr.organism.card import load_card, render_card

    folder = path or default_path()
    card = load_card(folder)
    if remeasure:
        card = _remeasure(folder, card)
    typer.echo(json.dumps(card, indent=2) if as_json else render_card(card))


def _remeasure(folder: Path, card: dict) -> dict:
    from rlvr.model.rollout import load_model
    from rlvr.organism.card import measure_card, write_card
    from rlvr.organism.config import load_config

    model, tokenizer = load_model(folder)
    config = load_config(Path(folder) / "build_config.toml")
    build_facts = {k: card[k] for k in ("build_seconds", "final_loss", "threads") if k in card}
    fresh = measure_card(model, tokenizer, config, build_facts, progress=True)
    write_card(folder, fresh)
    return fresh


def register(app: typer.Typer) -> None:
    app.add_typer(organism_app, name="organism")
