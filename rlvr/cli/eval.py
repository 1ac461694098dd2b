"""`rlvr eval`: evaluate a model, or every checkpoint of a run, on the math suites.

    rlvr eval                                             # the shipped organism, its suites
    rlvr eval --model PATH --suites math500,aime24 --data-dir DIR --template qwen25-math-cot
    rlvr eval --model PATH --suites aime24 --no-greedy --samples 8 --temperature 0.6
    rlvr eval --model PATH --suites my.jsonl --field problem=question --field answer=final
    rlvr eval --run runs/NAME                             # every checkpoint → runs/NAME/eval/
    rlvr eval --model PATH --protocol paper --data-dir DIR  # the paper's six suites, as it did

A model evaluation writes a run directory (`--out`, default runs/eval-<model>-<time>) with
config.toml and eval/step-0/. With --run, the suites and settings come from the flags or else
from the run's config.toml `[eval]` table, exactly as the trainer's evaluation hook
(rlvr.rl.eval_hook) uses them.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

import typer

from rlvr.errors import UserError

__all__ = ["register"]

_STEP_DIR = re.compile(r"^step-(\d+)$")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    model: str | None = typer.Option(None, "--model", help="HF model folder or Hub id "
                                     "(default: the shipped organism)."),
    run: Path | None = typer.Option(None, "--run", help="Evaluate every checkpoint of this run "
                                    "into RUN/eval/step-N/."),
    suites: str | None = typer.Option(None, "--suites", help="Comma-separated: math500, aime24, "
                                      "aime25, amc23, minerva_math, olympiadbench, hub:NAME, "
                                      "organism, organism-FAMILY, or a .jsonl/.parquet file."),
    samples: int | None = typer.Option(None, "--samples", help="Sampled completions per item "
                                       "(avg@k, the headline, and pass@k); default 8, 0 for "
                                       "greedy only."),
    temperature: float | None = typer.Option(None, "--temperature", help="For --samples "
                                             "(default 0.6)."),
    greedy: bool | None = typer.Option(None, "--greedy/--no-greedy", help="One greedy "
                                       "completion per item (default on)."),
    top_p: float | None = typer.Option(None, "--top-p"),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens"),
    template: str | None = typer.Option(None, "--template", help="raw, qwen25-math-cot, "
                                        "train-suffix, a string with {problem}, or a file."),
    limit: int | None = typer.Option(None, "--limit", help="First L items of each suite."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of the benchmark "
                                         "files (else $RLVR_DATA_DIR)."),
    field: list[str] | None = typer.Option(None, "--field", help="problem=COLUMN or "
                                           "answer=COLUMN for a user suite file."),
    group_by: list[str] | None = typer.Option(None, "--group-by", help="A column to report "
                                              "accuracy per value of, repeatable (family, "
                                              "subject and level are kept by default)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory to write."),
    seed: int | None = typer.Option(None, "--seed", help="Seeds the sampled completions only: "
                                    "the items are the same under any seed."),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    backend: str | None = typer.Option(None, "--backend", help="hf (default), vllm or auto."),
    input_dependence: int | None = typer.Option(None, "--input-dependence", help="Items per suite for "
                                         "the input-dependence (MI) diagnostic; 0 = off."),
    overwrite: bool = typer.Option(False, "--overwrite", help="With --run: re-evaluate steps "
                                   "that already have an evaluation."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda if "
                                      "available)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    protocol: str | None = typer.Option(None, "--protocol", help="paper: the paper's six "
                                        "suites and settings per suite (greedy / avg@8 at "
                                        "T 0.6, 3,072 tokens, 3 s grading); flags win."),
) -> None:
    """Evaluate a model (or every checkpoint of a run) on math suites, with diagnostics."""
    flags = {"samples": samples, "temperature": temperature, "greedy": greedy, "top_p": top_p,
             "max_new_tokens": max_new_tokens, "template": template, "seed": seed,
             "batch_size": batch_size, "backend": backend, "input_dependence": input_dependence,
             "group_by": _group_by(group_by)}
    fields = _parse_fields(field)
    if protocol is not None:
        from rlvr.evaluation.protocols import PROTOCOLS

        if protocol not in PROTOCOLS:
            raise UserError(f"unknown evaluation protocol {protocol!r}",
                            f"valid: {', '.join(PROTOCOLS)}")
    if run is not None:
        if model is not None or out is not None:
            raise UserError("--run evaluates the run's own checkpoints into the run",
                            "drop --model/--out, or drop --run")
        _eval_run(run, flags, suites, limit, data_dir, fields, overwrite, device, not quiet,
                  protocol)
        return
    _eval_model(model, flags, suites, limit, data_dir, fields, out, device, not quiet, protocol)


def _parse_fields(pairs):
    from rlvr.data.suites import parse_fields

    return parse_fields(pairs)


def _settings(flags: dict, base: dict):
    """Flags given on the command line win over `base` (a run's [eval] table), which wins over
    the settings without a protocol (rlvr.evaluation.protocols.NO_PROTOCOL)."""
    from rlvr.evaluation.evaluate import EvalSettings
    from rlvr.evaluation.protocols import NO_PROTOCOL

    values = {**NO_PROTOCOL, **base, **{k: v for k, v in flags.items() if v is not None}}
    return EvalSettings.from_dict(values)


def _protocol_suites(protocol: str | None) -> list[str]:
    from rlvr.evaluation.protocols import PROTOCOLS

    return list(PROTOCOLS[protocol]["suites"]) if protocol else []


def _protocol_record(protocol: str | None, per_suite) -> dict:
    """What config.toml records of a protocol: its name and the settings each suite got."""
    if protocol is None:
        return {}
    return {"protocol": protocol,
            "per_suite": {suite: s.to_dict() for suite, s in per_suite.items()}}


def _eval_model(model_spec, flags, suite_specs, limit, data_dir, fields, out, device, progress,
                protocol=None):
    from rlvr.data.prompts import choose_template
    from rlvr.data.suites import default_suite_specs, load_suites
    from rlvr.evaluation.evaluate import evaluate, fit_settings, print_summary
    from rlvr.model.locate import resolve_model
    from rlvr.model.rollout import load_model, resolve_backend
    from rlvr.rl.eval_hook import fit_protocol, settings_from_run
    from rlvr.rundir.write import fresh_run_dir, write_config_toml

    asked = dict(flags)  # a protocol takes what was asked, not the template chosen below
    # The model first: a missing model is the error to report, not the default suite's data.
    path = resolve_model(model_spec)
    step, run_settings, table = 0, {}, {}
    checkpoint = _checkpoint_of(path)
    if checkpoint is not None:
        # A run's checkpoint: its folder is that step, evaluated as the run evaluates.
        step, config = checkpoint
        run_settings, table = settings_from_run(config), dict(config.get("eval") or {})
        protocol = protocol or table.get("protocol") or None
        limit = limit if limit is not None else (table.get("n_per_suite") or table.get("limit")
                                                 or None)
        data_dir = data_dir if data_dir is not None else table.get("data_dir")
    specs = (_split(suite_specs) or _protocol_suites(protocol) or list(table.get("suites") or [])
             or default_suite_specs(path))
    problems = load_suites(specs, data_dir=data_dir, fields=fields, limit=limit,
                           organism_n=limit or 200, group_by=flags.get("group_by") or ())
    if checkpoint is not None:
        shown = {k: run_settings[k] for k in ("template", "samples", "temperature",
                                              "max_new_tokens") if k in run_settings}
        typer.echo(f"{path} is step {step} of {path.parent.parent}: evaluated as that run "
                   f"evaluates ({', '.join(f'{k} {v}' for k, v in shown.items())}, suites "
                   f"{','.join(specs)}); flags given win")
    model, tokenizer = load_model(path, device=device)
    if flags.get("template") is None and "template" not in run_settings:
        # The organism reads bare problems; other chat models get the paper's evaluation
        # prompt when their tokenizer can encode it.
        organism = default_suite_specs(path) == ["organism"]
        chat = bool(getattr(tokenizer, "chat_template", None))
        preferred = "qwen25-math-cot" if chat and not organism else "raw"
        every = [p for items in problems.values() for p in items]
        flags = {**flags, "template": choose_template(preferred, every, tokenizer)}
    settings = fit_settings(model, tokenizer, problems, _settings(flags, run_settings))
    per_suite = fit_protocol(protocol, problems, model, tokenizer, asked)
    resolve_backend(settings.backend)  # a backend that is not installed fails before any write
    out = Path(out) if out is not None else Path("runs") / (
        f"eval-{_slug(Path(str(model_spec or path)).name)}-{time.strftime('%Y%m%d-%H%M%S')}")
    # An evaluation that does not finish (an error, Ctrl-C) leaves no folder: it has no resume.
    with fresh_run_dir(out) as run_dir:
        write_config_toml(run_dir / "config.toml", {
            "kind": "eval", "model": {"path": str(model_spec or path), "folder": str(path),
                                      **_checkpoint_record(path, checkpoint)},
            "eval": {**settings.to_dict(), "suites": specs, "limit": limit,
                     "data_dir": None if data_dir is None else str(data_dir),
                     "fields": fields or None, **_protocol_record(protocol, per_suite)}},
            seed=settings.seed)
        summary = evaluate(model, tokenizer, problems, settings, run_dir=run_dir, step=step,
                           progress=progress, model_name=str(model_spec or path),
                           per_suite=per_suite)
    print_summary(summary)
    typer.echo(f"wrote {run_dir}/eval/step-{step}/")


def _checkpoint_of(path: Path) -> tuple[int, dict] | None:
    """(step, the run's config) when `path` is RUN/checkpoints/step-N (or a bf16
    RUN/snapshots/step-N) of a run with a config."""
    match = _STEP_DIR.match(path.name)
    if match is None or path.parent.name not in ("checkpoints", "snapshots"):
        return None
    if not (path.parent.parent / "config.toml").is_file():
        return None
    return int(match.group(1)), _read_run_config(path.parent.parent)


def _checkpoint_record(path: Path, checkpoint) -> dict:
    """What config.toml records of a checkpoint's run (the report never takes it as a base)."""
    if checkpoint is None:
        return {}
    return {"run": str(path.parent.parent), "step": checkpoint[0]}


def _eval_run(run, flags, suite_specs, limit, data_dir, fields, overwrite, device, progress,
              protocol=None):
    from rlvr.data.suites import default_suite_specs, load_suites
    from rlvr.evaluation.evaluate import evaluate, fit_settings, print_summary
    from rlvr.evaluation.tables import print_over_steps
    from rlvr.model import vllm_backend
    from rlvr.model.preflight import check_device
    from rlvr.model.rollout import load_model, resolve_backend
    from rlvr.rl.eval_hook import fit_protocol, settings_from_run

    config = _read_run_config(Path(run))
    table = dict(config.get("eval") or {})
    # --protocol names its own suites; a protocol read from the run keeps the run's suites.
    asked, protocol = protocol, protocol or table.get("protocol") or None
    base = settings_from_run(config)
    settings = _settings(flags, base)
    check_device(device)
    resolve_backend(settings.backend)
    steps = _checkpoints(Path(run))
    if not steps:
        raise UserError(f"{run} has no checkpoints/step-N folders",
                        "train with checkpoints saved (log.save_every), or use --model")
    specs = (_split(suite_specs) or _protocol_suites(asked)
             or list(table.get("suites") or []) or default_suite_specs(steps[0][1]))
    limit = limit if limit is not None else (table.get("n_per_suite") or table.get("limit"))
    data_dir = data_dir if data_dir is not None else table.get("data_dir")
    problems = load_suites(specs, data_dir=data_dir, fields=fields or table.get("fields"),
                           limit=limit or None, organism_n=limit or 200,
                           group_by=settings.group_by)
    _note_older_items(Path(run), problems)
    fitted, per_suite = False, None
    for step, folder in steps:
        if (Path(run) / "eval" / f"step-{step}" / "summary.json").is_file() and not overwrite:
            typer.echo(f"step {step}: already evaluated (pass --overwrite to redo)")
            continue
        model, tokenizer = load_model(folder, device=device)
        if not fitted:  # the checkpoints of one run share their tokenizer and context
            settings, fitted = fit_settings(model, tokenizer, problems, settings), True
            per_suite = fit_protocol(protocol, problems, model, tokenizer, flags)
        summary = evaluate(model, tokenizer, problems, settings, run_dir=Path(run), step=step,
                           progress=progress, model_name=str(folder), per_suite=per_suite)
        print_summary(summary)
        # One checkpoint's weights at a time: the next one's HF copy and vLLM engine need room.
        del model, tokenizer
        vllm_backend.release()
    print_over_steps(Path(run), list(problems))


def _note_older_items(run: Path, problems) -> None:
    """A run evaluated before organism suites were fixed lists holds other items (drawn with
    its evaluation seed): say so once, since its old and new steps then share few items."""
    from rlvr.errors import notice
    from rlvr.rundir.read import load_run

    evals = load_run(run).evals if (run / "eval").is_dir() else {}
    for suite, items in problems.items():
        wanted = {p.id for p in items}
        older = sorted(step for step, e in evals.items() if suite in e.records
                       and not {r.id for r in e.records[suite]} <= wanted)
        if older:
            notice(f"{suite}: step(s) {', '.join(map(str, older))} of {run} were evaluated on "
                   "other items (drawn with the evaluation seed by an older rlvr); steps "
                   "evaluated now use the suite's fixed items, and comparisons across them "
                   "use the items both share")


def _read_run_config(run: Path) -> dict:
    path = run / "config.toml"
    if not path.is_file():
        raise UserError(f"{run} is not a run directory (no config.toml)",
                        "pass --run runs/NAME of a training run")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid TOML ({exc})") from exc


def _checkpoints(run: Path) -> list[tuple[int, Path]]:
    """Every evaluable step: resumable checkpoints and bf16 snapshots (rlvr.rl.snapshots);
    where a step has both, the checkpoint (its full-precision weights)."""
    found: dict[int, Path] = {}
    for kind in ("snapshots", "checkpoints"):
        root = run / kind
        if not root.is_dir():
            continue
        for folder in root.iterdir():
            match = _STEP_DIR.match(folder.name)
            if match and (folder / "config.json").is_file():
                found[int(match.group(1))] = folder
    return sorted(found.items())


def _group_by(columns: list[str] | None) -> tuple[str, ...] | None:
    names = tuple(n.strip() for item in columns or () for n in item.split(",") if n.strip())
    return names or None


def _split(specs: str | None) -> list[str]:
    return [s.strip() for s in (specs or "").split(",") if s.strip()]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "model"
