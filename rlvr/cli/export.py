"""`rlvr export verl` and `rlvr import verl`: run the experiment on verl, bring it back.

    rlvr export verl --examples 124[,682] --pool dsr_sub.parquet --reward outcome
                     [--label X | --wrong-label-kind guessable] [--copies 128]
                     [--val-suites math500,aime24|none --data-dir DIR] [--model PATH] --out DIR
    rlvr import verl --checkpoints CKPT_DIR [--accuracy-json ACC.json | --reward-log DIR]
                     [--export-dir DIR]
                     [--base-model PATH] [--reward MODE] [--link] --out runs/NAME
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from rlvr.grading.rewards import REWARD_MODES

__all__ = ["register"]

export_app = typer.Typer(help="Export an experiment to another engine (verl).",
                         no_args_is_help=True)
import_app = typer.Typer(help="Import another engine's run as an rlvr run directory.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@export_app.command("verl")
def export_verl_command(
    examples: str = typer.Option(..., "--examples", help="Pool indices, comma-separated."),
    pool: str = typer.Option(..., "--pool", help="The training pool, as `rlvr train --pool` "
                             "takes it: a verl parquet, a jsonl of problems or organism-FAMILY:N."),
    reward: str = typer.Option("outcome", "--reward",
                               help=" | ".join(REWARD_MODES)),
    label: str | None = typer.Option(None, "--label", help="wrong_label: the replacement label."),
    wrong_label_kind: str | None = typer.Option(
        None, "--wrong-label-kind", help="wrong_label: guessable | unguessable (derived label)."),
    p: float = typer.Option(0.5, "--p", help="random: the probability of reward 1."),
    seed: int = typer.Option(0, "--seed", help="random / derived labels: the seed."),
    copies: int = typer.Option(128, "--copies",
                               help="Rows of train.parquet = verl's train batch size; k examples "
                                    "are repeated copies/k times each."),
    val_suites: str = typer.Option("math500", "--val-suites",
                                   help="Validation suites, e.g. math500,aime24 (default: "
                                        "MATH500, as the paper); none: no validation."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of the suites' jsonl."),
    model: str = typer.Option("Qwen/Qwen2.5-Math-1.5B", "--model",
                              help="Default MODEL_PATH written into the launch scripts: a "
                                   "folder or a Hub id."),
    out: Path = typer.Option(..., "--out", help="The folder to create (must not exist)."),
) -> None:
    """Write train/validation parquet, a reward module and launch scripts for verl 0.9."""
    from rlvr.grading.rewards import RewardSpec
    from rlvr.model.locate import local_folder
    from rlvr.verl.export import VerlExport, export_verl

    local_folder(model)  # a local path must be a folder; verl resolves a Hub id on its machine
    spec = VerlExport(
        examples=_split(examples), pool=pool,
        reward=RewardSpec(mode=reward, label=label, wrong_label_kind=wrong_label_kind, p=p,
                          seed=seed),
        batch=copies, val_suites=() if val_suites.strip() == "none" else _split(val_suites),
        data_dir=data_dir, model=model)
    command = "rlvr " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    written = export_verl(spec, out, command=command)
    typer.echo(f"wrote {written}: train.parquet ({copies} rows), "
               f"{len(spec.val_suites)} validation file(s), rlvr_reward.py, run_1shot.sh, "
               "run_entropy_only.sh, README.md")


@import_app.command("verl")
def import_verl_command(
    checkpoints: Path = typer.Option(..., "--checkpoints",
                                     help="verl's trainer.default_local_dir (global_step_N/)."),
    accuracy_json: Path | None = typer.Option(
        None, "--accuracy-json",
        help="Per-example training accuracy JSON: {example: list of accuracies, one per "
             "step}, or a list of {step, train_acc} records."),
    reward_log: Path | None = typer.Option(
        None, "--reward-log", help="The exported reward module's log folder "
                                   "(default: CHECKPOINTS/reward_log when present)."),
    responses_per_step: int | None = typer.Option(
        None, "--responses-per-step", help="Reward log: train batch × rollout.n "
                                           "(default: from --export-dir)."),
    export_dir: Path | None = typer.Option(
        None, "--export-dir", help="The `rlvr export verl` folder of this run (reward mode, "
                                   "examples, base model, batch)."),
    base_model: str | None = typer.Option(None, "--base-model",
                                          help="The model the run started from."),
    reward: str | None = typer.Option(None, "--reward", help="Reward mode (without --export-dir)."),
    label: str | None = typer.Option(None, "--label", help="wrong_label: the label used."),
    wrong_label_kind: str | None = typer.Option(None, "--wrong-label-kind"),
    verl_metrics: Path | None = typer.Option(
        None, "--verl-metrics", help="verl's file-logger jsonl (default: CHECKPOINTS/metrics.jsonl)."),
    link: bool = typer.Option(False, "--link", help="Symlink the weights instead of copying."),
    out: Path = typer.Option(..., "--out", help="The run directory to create."),
) -> None:
    """Import a verl run's Hugging Face checkpoints and accuracies as an rlvr run directory."""
    from rlvr.verl.importer import VerlImport, import_verl

    spec = VerlImport(checkpoints=checkpoints, accuracy_json=accuracy_json, reward_log=reward_log,
                      responses_per_step=responses_per_step, export_dir=export_dir,
                      base_model=base_model, reward_mode=reward, label=label,
                      wrong_label_kind=wrong_label_kind, verl_metrics=verl_metrics, link=link)
    written = import_verl(spec, out)
    typer.echo(f"wrote {written}: now `rlvr eval --run {written}` and `rlvr report {written}`")
