"""`rlvr report`: where did the gain come from, as an HTML page and a Markdown summary.

    rlvr report RUN_DIR... -o DIR/report.html [--base RUN_DIR] [--threshold 0.95] [--window 5]

Reads run directories and evaluation folders (`rlvr eval`, `rlvr import responses`;
docs/run-format.md), the base named with `--base` (a folder or its `eval/step-N`); writes the
page and DIR/claims.json (the claims checklist) beside it. Comparisons that cannot be made (different suites or items, no
base, no metrics) are listed in the report; the rest still renders.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rlvr.errors import UserError

__all__ = ["register", "report_command"]


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def report_command(
    runs: list[Path] = typer.Argument(..., metavar="RUN_DIR",
                                      help="Run directories (training or eval runs), or a "
                                      "folder of them such as a demo's.",
                                      show_default=False),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="HTML file to write."),
    base: Path | None = typer.Option(
        None, "--base", help="Run or evaluation folder of the starting model (default: an "
        "eval-only run among RUN_DIR of the model the training runs started from, else step 0 "
        "of the first training run; never an evaluation of a trained checkpoint)."),
    threshold: float = typer.Option(0.95, help="Train accuracy that counts as saturated."),
    window: int = typer.Option(5, help="Logged steps the accuracy must stay ≥ threshold."),
    decoding: str = typer.Option(
        "auto", help="Which records to compare when an evaluation has both: greedy (sample 0), "
        "sampled (1..K), or auto (sampled where present: avg@k is the headline)."),
    classifier: str | None = typer.Option(
        None, "--classifier", help="Reasoning styles: organism (mode markers) or generic (any "
        "LLM, from the text); default: organism for the organism, generic otherwise."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the Markdown summary."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Compare a run with the "
                                       "base even when they share too few items."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare a run with the "
                                        "base even when their decoding settings differ."),
) -> None:
    """Accuracy with intervals, the decomposition, claims, post-saturation and label study."""
    if not 0.0 < threshold <= 1.0:
        raise UserError(f"--threshold {threshold} is outside (0, 1]", "e.g. --threshold 0.95")
    if window < 1:
        raise UserError(f"--window {window} must be at least 1")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a directory", "give a file name such as report.html")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist",
                        "create it first, or write the report elsewhere")
    runs = _run_dirs(runs, out)
    from rlvr.analysis.compute import analyze
    from rlvr.analysis.report import render_markdown, write_report
    from rlvr.decomposition.styles import CLASSIFIERS

    if classifier is not None and classifier not in CLASSIFIERS:
        raise UserError(f"unknown --classifier {classifier!r}",
                        f"choose one of {', '.join(CLASSIFIERS)}")
    allow = [name for name, on in (("partial", allow_partial), ("mismatch", allow_mismatch))
             if on]
    analysis = analyze(runs, base=base, threshold=threshold, window=window,
                       decoding=decoding, classifier=classifier, allow=allow)
    claims = write_report(analysis, out)
    if not quiet:
        typer.echo(render_markdown(analysis))
    typer.echo(f"wrote {out} and {claims}")


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists()
                                 for name in ("config.toml", "metrics.jsonl", "eval"))


def _run_dirs(paths: list[Path], out: Path) -> list[Path]:
    """RUN_DIR arguments → run directories: a folder of runs (`runs/demo`) stands for the runs
    in it, and a report file among them (`runs/demo/*` matches report.html and claims.json)
    is skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() and (path.suffix in (".html", ".md", ".json")
                               or path.resolve() == out.resolve()):
            continue
        if path.is_dir() and not _is_run(path):
            inner = sorted(child for child in path.iterdir() if _is_run(child))
            if inner:
                found.extend(inner)
                continue
        found.append(path)
    if not found:
        raise UserError("no run directory among the paths given",
                        "pass folders written by `rlvr train`, `rlvr eval` or `rlvr demo`")
    return found
