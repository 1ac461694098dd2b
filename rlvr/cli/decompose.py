"""`rlvr decompose`: split one model's accuracy gain into selection, format and skill.

    rlvr decompose runs/base/eval/step-0 runs/outcome/eval/step-60
    rlvr decompose runs/outcome runs/outcome --step 60        # a run's step 0 → its step 60
    rlvr decompose BASE TRAINED --classifier generic --json

BASE and TRAINED are evaluation folders (`…/eval/step-N`) or run directories: a run given as
BASE contributes its step 0 (the model before training), one given as TRAINED its `--step N`
(default: its last evaluated step). Sampled records are used when both sides have them, else
greedy (said plainly). Refused (exit 2, one line) unless allowed: too few shared items
(`--allow-partial`; rule in rlvr.decomposition.comparable) and different decoding settings
(`--allow-mismatch`). Method: docs/analysis.md.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer

from rlvr.errors import UserError

__all__ = ["decompose_command", "register"]


def register(app: typer.Typer) -> None:
    app.command("decompose")(decompose_command)


def _run_root(path: Path) -> Path:
    """The run directory an evaluation folder belongs to (…/RUN/eval/step-N → RUN)."""
    return path.parent.parent if path.parent.name == "eval" else path


def _model_of(path: Path) -> str | None:
    """The run's `model.path` ("" = the shipped organism), else the summary's model name."""
    config = _run_root(path) / "config.toml"
    if config.is_file():
        try:
            model = tomllib.loads(config.read_text(encoding="utf-8")).get("model", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            model = {}
        if isinstance(model, dict) and isinstance(model.get("path"), str):
            return model["path"]
    summary = path / "summary.json"
    if summary.is_file():
        try:
            name = json.loads(summary.read_text(encoding="utf-8")).get("model")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return name if isinstance(name, str) and name else None
    return None


def _folder(path: Path, step: int | None, is_base: bool) -> Path:
    """The eval/step-N folder that `path` names."""
    if not path.exists():
        raise UserError(f"{path} does not exist", "pass …/eval/step-N or a run directory")
    if path.name.startswith("step-") and path.parent.name == "eval":
        return path
    evals = path / "eval"
    steps = sorted(int(p.name[5:]) for p in evals.glob("step-*") if p.name[5:].isdigit()) \
        if evals.is_dir() else []
    if not steps:
        raise UserError(f"{path} has no eval/step-N folder",
                        "evaluate it first (`rlvr eval --run`), or pass …/eval/step-N")
    want = (0 if 0 in steps else steps[0]) if is_base else (steps[-1] if step is None else step)
    if want not in steps:
        raise UserError(f"{path} has no evaluation at step {want}",
                        f"evaluated steps: {', '.join(map(str, steps))}")
    return evals / f"step-{want}"


def _load_pair(base: Path, trained: Path):
    """Both sides in one decoding: sampled when both have samples, else greedy; with a line
    saying which, and why when one side's samples are left out."""
    from rlvr.rundir.read import EvalStep, load_eval_step

    sampled = [load_eval_step(p, "auto") for p in (base, trained)]
    if all(s.decoding == "sampled" for s in sampled):
        return sampled, "sampled records (avg@k) on both sides"
    greedy = [s for s in sampled if s.decoding == "greedy" or s.greedy]
    names = ("BASE", "TRAINED")
    if len(greedy) < 2:
        only = [f"{n} has only {s.decoding} records" for n, s in zip(names, sampled, strict=True)]
        raise UserError(f"greedy on one side, sampled on the other ({'; '.join(only)})",
                        "a decomposition compares one decoding: evaluate both the same way")
    left_out = [n for n, s in zip(names, sampled, strict=True) if s.decoding == "sampled"]
    said = "greedy records on both sides" + (
        f" ({' and '.join(left_out)}'s sampled records are left out: the other side has none)"
        if left_out else "")
    return [s if s.decoding == "greedy" else EvalStep(s.step, s.greedy, s.summary, s.greedy)
            for s in sampled], said


def _checked(left, right, base_dir: Path, trained_dir: Path, allow_partial: bool,
             allow_mismatch: bool, decoding: str) -> tuple[dict, list[str]]:
    """The overlap and decoding checks: refused (UserError) unless allowed; returns what
    --json records of them and the notes to print."""
    from rlvr.decomposition.comparable import decoding_differences, overlap, overlap_refusal

    ov = overlap(left, right)
    refusal = overlap_refusal(ov)
    if refusal and not allow_partial:
        raise UserError(f"{refusal} ({'; '.join(ov.lines())})",
                        "evaluate both on the same items (same --suites and --limit), or pass "
                        "--allow-partial to compare what they share anyway")
    differences, unknown = decoding_differences(base_dir, trained_dir, sorted(ov.compared),
                                                decoding)
    if differences and not allow_mismatch:
        raise UserError(f"the two evaluations decode differently ({'; '.join(differences)}), "
                        "which moves accuracy by itself",
                        "evaluate both with the same settings, or pass --allow-mismatch")
    notes = [*([f"partial comparison allowed: {refusal}"] if refusal else []),
             *(f"decoding differs (allowed): {d}" for d in differences), *unknown]
    info = {"overlap": {s: dict(zip(("base", "trained", "shared"), v, strict=True))
                        for s, v in ov.per_suite.items()},
            "decoding_differences": differences}
    return info, notes


def _pts(estimate) -> str:
    ci = f" (no interval: {estimate.n} items)" if not estimate.has_interval else (
        f" [{100 * estimate.low:+.1f}, {100 * estimate.high:+.1f}]")
    noise = " (within noise)" if estimate.within_noise else ""
    return f"{100 * estimate.value:+.1f}{ci}{noise}"


def _print(result, notes: list[str], said: str, overlap: dict) -> None:
    from rlvr.decomposition.comparable import MIN_INTERVAL_ITEMS
    from rlvr.decomposition.gain import TERMS

    typer.echo(f"compared: {said}")
    for suite, v in overlap.items():
        typer.echo(f"  {suite}: base {v['base']} items, trained {v['trained']}, "
                   f"shared {v['shared']}")
    typer.echo(f"classifier {result.classifier}, {result.decoding} records, "
               f"{result.n_items} items, k = {result.k}; points, 95% paired item bootstrap "
               f"(no interval from fewer than {MIN_INTERVAL_ITEMS} items)")
    for row in (*result.suites, result.all):
        typer.echo(f"\n{row.suite} ({row.n_items} items): {100 * row.base_acc.value:.1f} → "
                   f"{100 * row.trained_acc.value:.1f}")
        for term in TERMS:
            typer.echo(f"  {term.replace('_', ' '):<18} {_pts(row.terms[term])}")
    typer.echo("\nstyle shares (π, φ = boxed share, a = accuracy when boxed), base → trained:")
    for shares in result.all.styles:
        cells = " ".join("—" if v is None else f"{v:.2f}" for v in shares.base)
        after = " ".join("—" if v is None else f"{v:.2f}" for v in shares.trained)
        typer.echo(f"  {shares.style:<11} {cells}  →  {after}")
    for note in notes:
        typer.echo(f"note: {note}", err=True)


def _print_coverage(cover) -> None:
    """pass@k of both sides with intervals, where the curves cross, items one side solves."""
    typer.echo(f"\ncoverage (classifier-free; {cover.n_items} items, strict pass@k, unbiased "
               "estimator, 95% paired item bootstrap):")
    for k, b, t, d in zip(cover.ks, cover.base, cover.trained, cover.difference, strict=True):
        typer.echo(f"  pass@{k:<4} {_acc(b)} → {_acc(t)}   difference {_pts(d)}")
    crossing = ("the trained curve stays above the base's" if cover.crossing_k is None
                else f"the trained curve is no longer above the base's from k = "
                f"{cover.crossing_k}")
    typer.echo(f"  {crossing}; not measurably above from k = {cover.not_above_k or '—'}")
    for name, items in (("trained", cover.only_trained), ("base", cover.only_base)):
        if not items:
            typer.echo(f"  solved only by {name}: none")
            continue
        least = min(i.other_samples for i in items)
        typer.echo(f"  solved only by {name}: {len(items)} item(s), e.g. "
                   + ", ".join(f"{i.suite}/{i.id} ({i.correct}/{i.samples})" for i in items[:3])
                   + f"; the other side never solved them in ≥ {least} samples each")


def _acc(estimate) -> str:
    ci = "" if not estimate.has_interval else (
        f" [{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]")
    return f"{100 * estimate.value:.1f}{ci}"


def decompose_command(
    base: Path = typer.Argument(..., metavar="BASE", help="…/eval/step-N or a run directory "
                                "(its step 0).", show_default=False),
    trained: Path = typer.Argument(..., metavar="TRAINED", help="…/eval/step-N or a run "
                                   "directory (with --step N; default its last step).",
                                   show_default=False),
    step: int | None = typer.Option(None, "--step", help="Step of a TRAINED run directory."),
    classifier: str | None = typer.Option(
        None, "--classifier", help="organism (the organism's mode markers) or generic (any "
        "LLM, from the text); default: organism for the organism, generic otherwise."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/analysis.md)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resamples."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Compare even when the "
                                       "sides share fewer than 10 items or under half the "
                                       "smaller side's."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare even when the "
                                        "decoding settings differ (temperature, top_p, samples, "
                                        "max new tokens, template)."),
) -> None:
    """Selection, format correction and skill change between two evaluations, with intervals."""
    from rlvr.decomposition.gain import decompose
    from rlvr.decomposition.styles import CLASSIFIERS, default_classifier

    if classifier is not None and classifier not in CLASSIFIERS:
        raise UserError(f"unknown --classifier {classifier!r}",
                        f"choose one of {', '.join(CLASSIFIERS)}")
    base_dir, trained_dir = _folder(base, None, True), _folder(trained, step, False)
    if base_dir.resolve() == trained_dir.resolve():
        raise UserError(f"BASE and TRAINED are the same evaluation ({base_dir})",
                        "give TRAINED a later --step")
    (left, right), said = _load_pair(base_dir, trained_dir)
    info, checks = _checked(left, right, base_dir, trained_dir, allow_partial, allow_mismatch,
                            left.decoding)
    model = _model_of(trained_dir)
    name = classifier or default_classifier(model if model is not None else _model_of(base_dir))
    result, notes = decompose(left, right, classifier=name, seed=seed,
                              run=str(trained_dir), base_name=str(base_dir))
    if result is None:
        raise UserError("nothing to compare: " + ("; ".join(notes) or "no shared suite"))
    notes = [*checks, *notes]
    from rlvr.decomposition.coverage import coverage

    cover = coverage(left, right, seed=seed)
    if as_json:
        typer.echo(json.dumps({**result.to_json(), "compared": said, **info,
                               "coverage": None if cover is None else cover.to_json()}))
        for note in notes:
            typer.echo(f"note: {note}", err=True)
    else:
        _print(result, [], said, info["overlap"])
        if cover is not None:
            _print_coverage(cover)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
