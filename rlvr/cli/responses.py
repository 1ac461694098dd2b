"""`rlvr import responses`: another harness's responses as an rlvr evaluation folder.

    rlvr import responses PATH... --out DIR [--format auto|qwen-eval|ttrl|verl-dump|jsonl]
        [--gold FILE_OR_SUITE] [--suite NAME] [--model NAME]

Writes DIR/eval/step-N/SUITE.jsonl and summary.json (docs/run-format.md), graded by our grader,
ready for `rlvr decompose`, `rlvr report` and the terminal tables. Formats and examples:
docs/evaluation.md ("Bring your own outputs").
"""

from __future__ import annotations

from pathlib import Path

import typer

from rlvr.cli.export import import_app
from rlvr.errors import UserError

__all__ = ["import_responses_command", "register"]

_SHOWN = 20  # unreadable lines and files listed before a count of the rest


def register(app: typer.Typer) -> None:
    """The command sits in `rlvr import`, which rlvr.cli.export registers."""


@import_app.command("responses")
def import_responses_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH", show_default=False,
                                       help="Response files, or folders of them (a folder of "
                                       "per-checkpoint sub-folders: one step each)."),
    out: Path = typer.Option(..., "--out", help="The evaluation folder to create."),
    fmt: str = typer.Option("auto", "--format", help="auto, qwen-eval, ttrl, verl-dump or jsonl."),
    gold: str | None = typer.Option(None, "--gold", help="verl dumps without `gts`: the suite "
                                    "or data file whose problems hold the golds."),
    suite: str | None = typer.Option(None, "--suite", help="Suite name for files that do not "
                                     "name one."),
    model: str | None = typer.Option(None, "--model", help="The model that wrote the responses "
                                     "(recorded; the report matches the base by it)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="For a --gold benchmark name."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Import another harness's responses as an evaluation folder, graded by our grader."""
    from rlvr.data.responses import graded_records, parse_paths
    from rlvr.data.responses.verl_dump import GoldIndex

    index = GoldIndex(_gold_problems(gold, data_dir)) if gold else None
    parsed = parse_paths(paths, fmt, suite, index)
    for line in parsed.problems[:_SHOWN]:
        typer.echo(line, err=True)
    if len(parsed.problems) > _SHOWN:
        typer.echo(f"… and {len(parsed.problems) - _SHOWN} more unreadable lines or files",
                   err=True)
    if not any(parsed.steps.values()):
        raise UserError("no response could be imported from " + ", ".join(map(str, paths)),
                        "see the skipped lines above; --format names the format")
    if index is not None and not index.used:
        typer.echo("note: --gold was not used: it supplies golds to verl dumps without a `gts` "
                   "column only", err=True)
    steps, agreement, notes = graded_records(parsed, progress=not quiet)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    _write(out, steps, parsed, {"format": fmt, "paths": [str(p) for p in paths],
                                "gold": gold, "suite": suite}, model or parsed.model)
    typer.echo(agreement.line())
    written = ", ".join(f"eval/step-{s}" for s in sorted(steps))
    then = (f"`rlvr decompose {out} {out}` (first step → last) and `rlvr report {out}`"
            if len(steps) > 1 else f"`rlvr decompose BASE {out}` or `rlvr report {out} --base "
            "BASE`, BASE the starting model's evaluation folder")
    typer.echo(f"wrote {out} ({written}): now {then}")


def _gold_problems(spec: str, data_dir: Path | None) -> list:
    from rlvr.data.suites import load_suites

    return [p for items in load_suites(spec, data_dir=data_dir).values() for p in items]


def _settings(records: list[dict], temperature: float | None):
    from rlvr.evaluation.evaluate import EvalSettings

    samples = max((r["sample"] for r in records), default=0)
    # The harness's token budget is unknown and not written anywhere: summarize_suite reads
    # only samples, temperature and seed, so the length below is a placeholder it never uses.
    return EvalSettings(greedy=any(r["sample"] == 0 for r in records), samples=samples,
                        temperature=temperature or 1.0, max_new_tokens=1)


def _write(out: Path, steps: dict, parsed, source: dict, model: str | None) -> None:
    import json

    from rlvr.evaluation.evaluate import print_summary, summarize_suite
    from rlvr.rundir.write import atomic_write_json, fresh_run_dir, write_config_toml

    with fresh_run_dir(out) as run_dir:
        k = max((r["sample"] for s in steps.values() for rs in s.values() for r in rs), default=0)
        write_config_toml(run_dir / "config.toml", {
            "kind": "eval", "model": {"path": model or "imported"},
            "import": {k: v for k, v in source.items() if v is not None},
            "eval": {"temperature": parsed.temperature, "samples": k or None,
                     "suites": sorted({s for suites in steps.values() for s in suites})}},
            seed=0)
        for step, suites in sorted(steps.items()):
            folder = run_dir / "eval" / f"step-{step}"
            folder.mkdir(parents=True)
            summary: dict = {"step": step, "model": model or "imported", "suites": {}}
            for name, records in suites.items():
                with open(folder / f"{_safe(name)}.jsonl", "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                stats = summarize_suite(records, _settings(records, parsed.temperature))
                # A temperature the files do not state is unknown, never a default.
                if stats["temperature"]:
                    stats["temperature"] = parsed.temperature
                labelled = [r["harness_correct"] for r in records
                            if r["harness_correct"] is not None]
                if labelled:
                    stats["harness_acc"] = sum(labelled) / len(labelled)
                summary["suites"][name] = stats
            atomic_write_json(folder / "summary.json", summary)
            print_summary(summary)


def _safe(suite: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in suite)
