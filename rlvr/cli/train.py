"""`rlvr train`: 1-shot RLVR with GRPO (and its controls) into a run directory.

    rlvr train --example organism-add:3 --reward outcome --out runs/add3
    rlvr train --model Qwen2.5-Math-1.5B --pool dsr_sub.parquet --example 124 --preset paper \\
        --reward wrong_label --label 12.7 --out runs/pi1-wrong
    rlvr train --out runs/add3 --resume           # continue a killed run
    rlvr train --engine trl --preset paper --model Qwen/Qwen2.5-Math-1.5B --example pi1 \
        --out runs/pi1                             # TRL's GRPOTrainer (+ vLLM on a GPU)
    rlvr train ... --plan [--json] [--gpu h100]    # memory, disk, time; trains nothing

Config resolution: preset → --overlay → --config FILE.toml → --set key=value → the flags below. With
--resume the run's own config.toml is used (only --steps may extend it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rlvr.errors import Interrupted, UserError
from rlvr.grading.rewards import REWARD_MODES

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    out: Path = typer.Option(..., "--out", help="Run directory to create (or --resume)."),
    model: str | None = typer.Option(None, "--model", help="HF model folder or Hub id "
                                     "(default: the shipped organism)."),
    example: list[str] | None = typer.Option(None, "--example", help="Training example id, "
                                             "repeatable: organism-add:3, add-327-415, a "
                                             "--pool index such as 124, or pi1 / pi13 (the "
                                             "paper's; the pool is found in --data-dir)."),
    train_file: str | None = typer.Option(None, "--train", help="Training file: jsonl of "
                                          "{problem, answer} or a verl parquet."),
    pool: str | None = typer.Option(None, "--pool", help="Pool that --example indexes: a verl "
                                     "parquet, a jsonl of problems or organism-FAMILY:N."),
    template: str | None = typer.Option(None, "--template", help="Prompt template: raw, "
                                        "train-suffix, qwen25-math-cot, a string with "
                                        "{problem}, or a file (default: the preset's)."),
    reward: str | None = typer.Option(None, "--reward", help=" | ".join(REWARD_MODES)),
    label: str | None = typer.Option(None, "--label", help="wrong_label: the replacement label."),
    wrong_label_kind: str | None = typer.Option(None, "--wrong-label-kind",
                                                help="wrong_label: guessable | unguessable."),
    preset: str = typer.Option("organism", "--preset", help="organism | paper"),
    overlay: list[str] | None = typer.Option(None, "--overlay", help="A named preset overlay, "
                                             "repeatable: dr_grpo (Dr. GRPO)."),
    steps: int | None = typer.Option(None, "--steps", help="Optimizer steps."),
    config: Path | None = typer.Option(None, "--config", help="A TOML file of config keys."),
    sets: list[str] | None = typer.Option(None, "--set", help="section.key=value, repeatable."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the whole run."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its "
                                "last checkpoint."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Also evaluate every N "
                                          "steps; step 0 and the last step are always "
                                          "evaluated (0: only those two). --no-eval: none."),
    no_eval: bool = typer.Option(False, "--no-eval", help="No evaluation during training "
                                 "(evaluate the checkpoints later with `rlvr eval --run`)."),
    eval_suites: list[str] | None = typer.Option(None, "--eval-suites", help="Suites to "
                                                 "evaluate, repeatable or comma-separated "
                                                 "(organism, organism-add, math500, ...)."),
    save_every: int | None = typer.Option(None, "--save-every", help="Checkpoint every N steps."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder of the benchmark "
                                        "files and the paper's pool (default: $RLVR_DATA_DIR, "
                                        "else where `rlvr data fetch` writes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    engine: str = typer.Option("native", "--engine", help="native (rlvr's trainer; CPU, the "
                               "organism) or trl (TRL's GRPOTrainer, vLLM colocate on a GPU; "
                               "docs/gpu.md)."),
    plan: bool = typer.Option(False, "--plan", help="Print memory per phase, disk and time of "
                              "the run from the model's config.json, with every assumption; "
                              "train nothing (exit 2 when it will not fit)."),
    as_json: bool = typer.Option(False, "--json", help="--plan as one JSON object."),
    gpu: str | None = typer.Option(None, "--gpu", help="--plan for this GPU: h100, h200 or "
                                   "a100 (default: the visible one)."),
) -> None:
    """GRPO on one (or a few) examples: the paper's 1-shot RLVR and its controls."""
    from rlvr.core.loader import load_toml
    from rlvr.rl.config import config_from_dict
    from rlvr.rl.presets import resolve

    if engine not in ("native", "trl"):
        raise UserError(f"unknown engine {engine!r}", "choose native or trl")
    if no_eval and (eval_every is not None or eval_suites):
        raise UserError("--no-eval turns training-time evaluation off",
                        "drop --eval-every/--eval-suites, or drop --no-eval")
    if (as_json or gpu) and not plan:
        raise UserError("--json and --gpu describe a --plan", "add --plan")
    overrides = _overrides(model=model, example=example, train_file=train_file, pool=pool,
                           template=template, reward=reward, label=label,
                           wrong_label_kind=wrong_label_kind,
                           seed=seed, eval_every=eval_every, eval_suites=eval_suites,
                           save_every=save_every, check_model=not plan, data_dir=data_dir)
    if no_eval:
        overrides.setdefault("eval", {})["suites"] = []
    if resume:
        if overrides or sets or overlay or config is not None:
            raise UserError("--resume continues with the run's own config.toml",
                            "drop the other config flags (only --steps may extend the run)")
        saved = out / "config.toml"
        if not saved.is_file():
            raise UserError(f"cannot resume: {saved} does not exist", "drop --resume")
        data = load_toml(saved)
        if data.get("engine", "native") != engine:
            raise UserError(f"{out} was trained with --engine {data.get('engine', 'native')}",
                            f"resume it with --engine {data.get('engine', 'native')}")
        if steps is not None:
            data["steps"] = steps
        cfg = config_from_dict(data)
    else:
        if steps is not None:
            overrides["steps"] = steps
        cfg = resolve(preset, file=config, sets=list(sets or []), overrides=overrides,
                      overlays=list(overlay or []))
    from rlvr.rl import plan as planner

    if plan:
        _print_plan(cfg, engine=engine, out=out, gpu=gpu, as_json=as_json)
        return
    planner.check_before_run(cfg, engine=engine, out=out)
    if engine == "trl":
        from rlvr.rl.trl_engine import train_trl

        run_dir = train_trl(cfg, run_dir=out, progress=progress, resume=resume)
        from rlvr.evaluation.tables import print_run_accuracy

        print_run_accuracy(run_dir)
        typer.echo(f"run written to {run_dir}")
        return
    from rlvr.rl.loop import train

    try:
        run_dir = train(cfg, run_dir=out, resume=resume, progress=progress)
    except KeyboardInterrupt:
        if (out / "metrics.jsonl").is_file():
            raise Interrupted(f"resume with `rlvr train --out {out} --resume`") from None
        raise
    from rlvr.evaluation.tables import print_run_accuracy

    print_run_accuracy(run_dir)
    typer.echo(f"run written to {run_dir}")


def _print_plan(cfg, *, engine: str, out: Path, gpu: str | None, as_json: bool) -> None:
    """`--plan`: the run's memory, disk and time; exit 2 (one line) when it will not fit."""
    import json

    from rlvr.rl import plan as planner

    shape = planner.read_shape(planner.model_folder(cfg.model.path))
    found = planner.detect_gpu(gpu) if cfg.model.device != "cpu" else None
    result = planner.make_plan(cfg, shape, engine=engine, gpu=found, out=out,
                               vllm_share=cfg.rollout.vllm_memory)
    typer.echo(json.dumps(result.to_json(), indent=1) if as_json else planner.render(result))
    problem = result.problem()
    if problem:
        raise UserError(problem)


def _overrides(*, model, example, train_file, pool, template, reward, label, wrong_label_kind, seed,
               eval_every, eval_suites, save_every, check_model: bool = True,
               data_dir: str | None = None) -> dict[str, Any]:
    from rlvr.rl.problem_sets import PAPER_EXAMPLES, paper_pool

    out: dict[str, Any] = {}

    def put(section: str | None, key: str, value: Any) -> None:
        if value is None:
            return
        (out.setdefault(section, {}) if section else out)[key] = value

    if model is not None and check_model:
        from rlvr.model.locate import resolve_model

        resolve_model(model)  # a missing folder or an unreachable Hub id fails before any work
    put("model", "path", model)
    put("eval", "data_dir", _absolute(data_dir))
    if example and any(e in PAPER_EXAMPLES for e in example):
        example = [PAPER_EXAMPLES.get(e, e) for e in example]
        if pool is None and train_file is None:
            try:
                pool = str(paper_pool(data_dir))
            except UserError:
                if check_model:
                    raise
                # --plan reads only the model's config.json: it needs no data to answer.
                pool = None
    put("data", "examples", list(example) if example else None)
    # Absolute, for the record: a resumed run reads its own snapshot of the rows, never these.
    put("data", "train_file", _absolute(train_file))
    put("data", "pool", _absolute(pool))
    put("data", "template", template)
    put("reward", "mode", reward)
    put("reward", "label", label)
    put("reward", "wrong_label_kind", wrong_label_kind)
    put(None, "seed", seed)
    put("log", "eval_every", eval_every)
    put("log", "save_every", save_every)
    if eval_suites:
        names = [n.strip() for item in eval_suites for n in item.split(",") if n.strip()]
        put("eval", "suites", names)
    return out


def _absolute(path: str | None) -> str | None:
    if path is None or not Path(path).exists():
        return path  # a missing file (or an organism pool name) is reported as the user gave it
    return str(Path(path).resolve())
