"""Which problems a run trains on and evaluates on, from the ids and paths in its config.

Training example ids:
- organism: `organism-add:17` (item 17 of the `organism-add` held-out suite, seed 0) or a
  problem id such as `add-327-415` (family and operands);
- a pool (`data.pool`, a verl parquet): the pool index, e.g. `124` for the paper's π1;
- a training file (`data.train_file`, jsonl of problems or a verl parquet): every row, or the
  rows whose id is listed. Repeated rows (a 1-shot parquet holds 128 copies) count once; the
  copies per step come from `data.copies`.

Evaluation suites are `rlvr.data.suites` specs: `organism` (every organism family),
`organism-<family>`, a benchmark name (math500, aime24, ...; files under `eval.data_dir` or
$RLVR_DATA_DIR), or a .jsonl/.parquet file. Suites the user names are used as named; the
preset's default follows the model (`default_eval_suites`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from rlvr.errors import UserError
from rlvr.problem import Problem

if TYPE_CHECKING:
    from rlvr.rl.config import DataConfig, EvalConfig

__all__ = ["PAPER_EXAMPLES", "default_eval_suites", "eval_suites", "organism_problem",
           "paper_pool", "training_problems"]

# The paper's named examples: their index in its 1,209-problem pool (dsr_sub.parquet).
PAPER_EXAMPLES = {"pi1": "124", "pi13": "682"}
_POOL_FILE = "dsr_sub.parquet"


def paper_pool(data_dir: str | None) -> Path:
    """The paper's pool in the data folder (`--data-dir`, $RLVR_DATA_DIR, or the folder `rlvr
    data fetch` writes by default), or a one-line error naming the fetch to run."""
    from rlvr.data.suites import default_data_dir, resolve_data_dir

    folder = resolve_data_dir(data_dir)
    if folder is not None and (folder / _POOL_FILE).is_file():
        return (folder / _POOL_FILE).resolve()
    where = folder if folder is not None else default_data_dir()
    raise UserError(f"pi1 and pi13 index the paper's pool, and {where} has no {_POOL_FILE}",
                    "run `rlvr data fetch dsr_sub math500`, or pass --pool FILE or --data-dir DIR")


_SUITE_ITEM = re.compile(r"^(organism-[a-z]+):(\d+)$")
_PROBLEM_ID = re.compile(r"^([a-z]+)-(\d+(?:-\d+)*)$")


def training_problems(data: DataConfig) -> list[Problem]:
    """The distinct training examples, in the order given; every one has a gold answer."""
    if data.train_file and data.pool:
        raise UserError("give either a training file or a pool, not both",
                        "drop --train or --pool")
    if data.train_file:
        problems = _read_file(Path(data.train_file))
        if data.examples:
            problems = _select(problems, data.examples, data.train_file)
    elif data.pool:
        if not data.examples:
            raise UserError(f"--pool {data.pool} needs --example INDEX",
                            "e.g. --example 124 for the paper's π1")
        from rlvr.data.pools import load_pool

        problems = _select(load_pool(data.pool), data.examples, data.pool)
    else:
        if not data.examples:
            raise UserError("no training example given",
                            "pass --example organism-add:3, --pool FILE --example 124, "
                            "or --train FILE")
        problems = [organism_problem(e) for e in data.examples]
    unique: dict[str, Problem] = {}
    for p in problems:
        unique.setdefault(p.id, p)
    for p in unique.values():
        if not str(p.answer).strip():
            raise UserError(f"training example {p.id!r} has no gold answer",
                            "every training example needs a ground truth to reward against")
    return list(unique.values())


def organism_problem(example_id: str) -> Problem:
    from rlvr.organism.tasks import FAMILIES, heldout_suite, to_problem

    match = _SUITE_ITEM.match(example_id)
    if match:
        family, index = match.group(1).removeprefix("organism-"), int(match.group(2))
        if family not in FAMILIES:
            raise UserError(f"unknown organism family {family!r} in {example_id!r}",
                            f"choose from {', '.join(FAMILIES)}")
        return heldout_suite(family, n=index + 1, seed=0)[index]
    match = _PROBLEM_ID.match(example_id)
    if match and match.group(1) in FAMILIES:
        ops = tuple(int(v) for v in match.group(2).split("-"))
        try:
            return to_problem(match.group(1), ops, f"organism-{match.group(1)}")
        except (ValueError, IndexError, TypeError) as exc:
            raise UserError(f"{example_id!r} has the wrong operands for its family") from exc
    raise UserError(f"unknown training example {example_id!r}",
                    "use organism-<family>:<index> (e.g. organism-add:3), a problem id such "
                    "as add-327-415, or --pool FILE.parquet --example INDEX")


def _select(problems: list[Problem], ids: tuple[str, ...], source: str) -> list[Problem]:
    by_id = {p.id: p for p in problems}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise UserError(f"example {missing[0]!r} is not in {source}",
                        f"it holds {len(by_id)} examples, e.g. {', '.join(list(by_id)[:3])}")
    return [by_id[i] for i in ids]


def _read_file(path: Path) -> list[Problem]:
    from rlvr.data.pools import read_problems

    return read_problems(path, what="training file")


def eval_suites(cfg: EvalConfig) -> dict[str, list[Problem]]:
    """Suite name → problems for the periodic evaluation (empty when no suite is asked for)."""
    if not cfg.suites:
        return {}
    from rlvr.data.suites import load_suites

    return load_suites(list(cfg.suites), data_dir=cfg.data_dir, limit=cfg.n_per_suite or None,
                       organism_n=cfg.n_per_suite or 200)


def default_eval_suites(preset_suites, model_path: str, data_dir: str | None) -> list[str]:
    """The preset's evaluation suites that apply to this model, with a notice for each dropped.

    The organism's suites measure the shipped organism (and models built or trained from it)
    only; a benchmark counts when its data file is present. What remains may be nothing: no
    training-time evaluation, said once, rather than numbers that mean nothing or a run that
    stops on a missing file the user never asked for.
    """
    from rlvr.data.suites import (
        BENCHMARKS,
        benchmark_file,
        default_data_dir,
        default_suite_specs,
    )
    from rlvr.errors import notice

    organism = default_suite_specs(model_path or None) == ["organism"]
    kept, dropped = [], []
    for spec in preset_suites:
        if spec.startswith("organism") and not organism:
            dropped.append(f"{spec} (the organism's suites; this model is {model_path})")
        elif spec in BENCHMARKS and benchmark_file(spec, data_dir) is None:
            dropped.append(f"{spec} (no {spec}.jsonl in --data-dir, $RLVR_DATA_DIR or "
                           f"{default_data_dir()}; `rlvr data fetch {spec}` downloads it)")
        else:
            kept.append(spec)
    if dropped:
        what = f"evaluating on {', '.join(kept)} only" if kept else "no training-time evaluation"
        notice(f"{what}: the preset's default suite {'; '.join(dropped)} does not apply; name "
               "suites with --eval-suites")
    return kept
