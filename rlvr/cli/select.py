"""`rlvr select`: choose anchor examples, and turn the choice into a training set.

    rlvr select variance --history RUN_OR_FILE [--pool POOL] (--top K | --keep RHO)
                         [--score variance|limr] [--epochs K] [--json] [--save SEL.json]
                         [--write-train OUT --copies N --format jsonl|verl]
    rlvr select snr [--model PATH] --pool POOL --samples G (--keep RHO | --top K) [--json] ...
    rlvr select show [SEL.json | TRAIN.jsonl | TRAIN.parquet] [--pool POOL] [--index I ...]

POOL is a verl parquet, a jsonl of problems, or an organism suite (`organism-add:16`).
`--json` prints a list of {"rank", "index", "score", "mean_accuracy", "n"} on stdout and
nothing else there. Everything is checked before anything is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from rlvr.errors import UserError

__all__ = ["register"]

select_app = typer.Typer(help="Choose anchor examples: historical variance, LIMR, reward SNR.",
                         no_args_is_help=True)

_BATCH = 128  # the paper's 1-shot file: the anchor repeated to a batch of 128 prompts


def register(app: typer.Typer) -> None:
    app.add_typer(select_app, name="select")


_TOP = typer.Option(None, "--top", help="Keep the K best examples.")
_KEEP = typer.Option(None, "--keep", help="Keep the best fraction RHO (0 < RHO <= 1).")
_JSON = typer.Option(False, "--json", help="Print the chosen rows as JSON on stdout.")
_SAVE = typer.Option(None, "--save", help="Write the selection (JSON) for `rlvr select show`.")
_WRITE = typer.Option(None, "--write-train", help="Write the chosen examples as a training set.")
_COPIES = typer.Option(None, "--copies",
                       help=f"Copies of each chosen example (default: {_BATCH} // chosen).")
_FORMAT = typer.Option("jsonl", "--format", help="Training-set format: jsonl or verl.")
_FORCE = typer.Option(False, "--force", help="Overwrite --save / --write-train files.")


@select_app.command("variance")
def variance_command(
    history: Path = typer.Option(..., "--history",
                                 help="A run dir, its metrics.jsonl, or a JSON {index: [acc…]}."),
    pool: str | None = typer.Option(None, "--pool", help="The pool the history was run on."),
    top: int | None = _TOP,
    keep: float | None = _KEEP,
    score: str = typer.Option("variance", "--score", help="variance (the paper) or limr."),
    epochs: int | None = typer.Option(None, "--epochs",
                                      help="LIMR: epochs compared (default: the shortest)."),
    as_json: bool = _JSON,
    save: Path | None = _SAVE,
    write_train: Path | None = _WRITE,
    copies: int | None = _COPIES,
    fmt: str = _FORMAT,
    force: bool = _FORCE,
) -> None:
    """Rank a training history's examples by the std of their accuracy (or LIMR's score)."""
    from rlvr.data import pools
    from rlvr.evaluation import selection

    _check_outputs(save, write_train, fmt, force, pool)
    hist = selection.load_history(history)
    chosen = selection.choose(selection.rank(hist, score, epochs), top=top, keep=keep)
    problems = None
    if pool is not None:
        problems = selection.pick(chosen, pools.load_pool(pool), history_keys=hist)
    record = {"method": score, "history": str(history), "pool": pool}
    _finish(chosen, problems, record, as_json=as_json, save=save, write_train=write_train,
            copies=copies, fmt=fmt)


@select_app.command("snr")
def snr_command(
    model: str | None = typer.Option(
        None, "--model", help="A Hugging Face model folder or Hub id to sample (default: the "
                              "organism)."),
    pool: str = typer.Option(..., "--pool", help="Candidate examples."),
    samples: int = typer.Option(8, "--samples", help="Rollouts per candidate (G)."),
    top: int | None = _TOP,
    keep: float | None = _KEEP,
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    template: str = typer.Option("raw", "--template", help="Prompt template (rlvr.data.prompts)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="Response length "
                                              "cap (default: the preset's "
                                              "rollout.max_new_tokens)."),
    preset: str = typer.Option("organism", "--preset", help="organism | paper: the training "
                               "preset whose rollout length the candidates are sampled at."),
    reward: str = typer.Option("outcome", "--reward", help="Reward mode scored."),
    as_json: bool = _JSON,
    save: Path | None = _SAVE,
    write_train: Path | None = _WRITE,
    copies: int | None = _COPIES,
    fmt: str = _FORMAT,
    force: bool = _FORCE,
) -> None:
    """Sample G rollouts per candidate; keep those whose rewards vary most (GRPO signal)."""
    from rlvr.data import pools
    from rlvr.evaluation import selection

    _check_outputs(save, write_train, fmt, force, pool)
    from rlvr.model.locate import resolve_model

    if max_new_tokens is None:
        from rlvr.rl.presets import preset_dict

        max_new_tokens = preset_dict(preset)["rollout"]["max_new_tokens"]
    candidates = pools.load_pool(pool)
    selection.choose([], top=top, keep=keep)  # reject bad --top/--keep before sampling
    folder = resolve_model(model)  # a folder, or a Hub id through the cache (rlvr.model.locate)
    model = model or str(folder)
    ranked = selection.snr_rank(folder, candidates, samples=samples, seed=seed,
                                template=template, temperature=temperature,
                                max_new_tokens=max_new_tokens, reward_mode=reward,
                                progress=not as_json)
    chosen = selection.choose(ranked, top=top, keep=keep)
    problems = selection.pick(chosen, candidates)
    record = {"method": "snr", "model": str(model), "pool": pool, "samples": samples,
              "seed": seed, "template": template, "temperature": temperature}
    _finish(chosen, problems, record, as_json=as_json, save=save, write_train=write_train,
            copies=copies, fmt=fmt)


@select_app.command("show")
def show_command(
    target: Path | None = typer.Argument(
        None, help="A saved selection (.json) or a training set (.jsonl / .parquet)."),
    pool: str | None = typer.Option(None, "--pool", help="Pool to look examples up in."),
    index: list[str] | None = typer.Option(
        None, "--index", help="Examples of --pool to show (default: the paper's π1, π13 when "
        "the pool holds them, else every example)."),
    show_all: bool = typer.Option(False, "--all", help="List every example of --pool."),
    as_json: bool = _JSON,
) -> None:
    """Show a saved selection, a training set's examples, or a pool's examples."""
    from rlvr.data import pools

    if target is None:
        if pool is None:
            raise UserError("nothing to show", "give a selection/training file or --pool POOL")
        if show_all and index:
            raise UserError("--all lists every example", "drop --index, or drop --all")
        _show_pool(pools.load_pool(pool), index, show_all, as_json)
    elif target.suffix == ".json":
        _show_selection(target, pool, as_json)
    elif target.suffix in (".jsonl", ".parquet"):
        _show_training_set(target, as_json)
    else:
        raise UserError(f"cannot show {target}", "give a .json selection, .jsonl or .parquet")


# --- helpers ------------------------------------------------------------------------------------

def _check_outputs(save: Path | None, write_train: Path | None, fmt: str, force: bool,
                   pool: str | None) -> None:
    if fmt not in ("jsonl", "verl"):
        raise UserError(f"unknown --format {fmt!r}", "choose jsonl or verl")
    if write_train is not None and pool is None:
        raise UserError("--write-train needs --pool", "the pool holds the problems and answers")
    for path in (save, write_train):
        if path is not None and path.exists() and not force:
            raise UserError(f"{path} already exists", "choose another path or pass --force")


def _finish(chosen, problems, record: dict[str, Any], *, as_json: bool, save: Path | None,
            write_train: Path | None, copies: int | None, fmt: str) -> None:
    from rlvr.data import pools
    from rlvr.rundir.write import atomic_write_json

    rows = [r.to_dict() for r in chosen]
    if write_train is not None:
        n = copies if copies is not None else max(1, _BATCH // len(problems))
        pools.write_training_set(problems, write_train, copies=n, fmt=fmt)
        _note(f"wrote {len(problems)} example(s) × {n} copies to {write_train} ({fmt})", as_json)
    if save is not None:
        atomic_write_json(save, {**record, "rows": rows})
        _note(f"saved the selection to {save}", as_json)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _table(f"chosen by {record['method']}", rows, problems)


def _note(message: str, as_json: bool) -> None:
    # With --json, stdout carries only the JSON list.
    print(message, file=sys.stderr if as_json else sys.stdout)


def _table(title: str, rows: list[dict], problems=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=title)
    for name in ("rank", "index", "score", "mean acc", "n"):
        table.add_column(name, justify="right", no_wrap=True)
    if problems is not None:
        table.add_column("answer", max_width=16)
        table.add_column("problem")
    # Rich squeezes no-wrap columns to nothing when a long cell is present: cut text to fit.
    room = max(16, console.width - 64)
    for i, row in enumerate(rows):
        cells = [str(row["rank"]), str(row["index"]), f"{row['score']:.4f}",
                 f"{row['mean_accuracy']:.3f}", str(row["n"])]
        if problems is not None:
            cells += [_one_line(problems[i].answer, 14), _one_line(problems[i].problem, room)]
        table.add_row(*cells)
    console.print(table)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _show_selection(path: Path, pool: str | None, as_json: bool) -> None:
    from rlvr.data import pools
    from rlvr.evaluation import selection

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read selection {path} ({exc})") from exc
    rows = data.get("rows") if isinstance(data, dict) else data
    keys = ("rank", "index", "score", "mean_accuracy", "n")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(keys) <= set(r)
                                             for r in rows):
        raise UserError(f"{path} is not a selection",
                        "write one with --save or --json from `rlvr select variance/snr`")
    pool = pool or (data.get("pool") if isinstance(data, dict) else None)
    problems = None
    if pool is not None:
        chosen = [selection.Ranked(r["rank"], str(r["index"]), r["score"], r["mean_accuracy"],
                                   r["n"]) for r in rows]
        problems = selection.pick(chosen, pools.load_pool(pool))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    method = data.get("method", "?") if isinstance(data, dict) else "?"
    _table(f"{path.name}: chosen by {method}", rows, problems)


def _show_training_set(path: Path, as_json: bool) -> None:
    from collections import Counter

    from rlvr.data import pools

    counts = Counter(p.id for p in _read_all(path))
    examples = pools.load_pool(path)
    _examples_table(f"{path.name}: {sum(counts.values())} rows",
                    [(None, p, counts[p.id]) for p in examples], as_json)


def _read_all(path: Path):
    from rlvr.data.pools import read_problems

    return read_problems(path, what="training set")


def _show_pool(pool, index: list[str] | None, show_all: bool, as_json: bool) -> None:
    by_id = {p.id: p for p in pool}
    from rlvr.evaluation.selection import PAPER_ANCHORS

    paper = all(i in by_id for i in PAPER_ANCHORS.values())
    if show_all or (not index and not paper):
        _examples_table(f"pool: {len(pool)} examples", [(None, p, None) for p in pool], as_json)
        return
    wanted = [(None, i) for i in index] if index else list(PAPER_ANCHORS.items())
    missing = [i for _, i in wanted if i not in by_id]
    if missing:
        raise UserError(f"example(s) {', '.join(missing)} are not in the pool",
                        "check the indices against the pool (--all lists them)")
    _examples_table("pool examples", [(name, by_id[i], None) for name, i in wanted], as_json)


def _examples_table(title: str, entries, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"name": name, "index": p.id, "answer": p.answer,
                                "problem": p.problem, "copies": copies}
                               for name, p, copies in entries], ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in ("name", "index", "copies", "answer"):
        table.add_column(name, no_wrap=True, min_width=len(name))
    table.add_column("problem", overflow="fold")
    for name, p, copies in entries:
        table.add_row(name or "", p.id, "" if copies is None else str(copies), p.answer,
                      _one_line(p.problem, 400))
    Console().print(table)
