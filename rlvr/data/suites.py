"""Evaluation suites: the paper's six benchmarks, the organism's held-out sets, user files.

A suite spec (what `--suites` takes, comma-separated) is one of:
- a benchmark name (`math500`, `aime24`, `aime25`, `amc23`, `minerva_math`, `olympiadbench`):
  read from `<data dir>/<name>.jsonl` (or `.parquet`) as the paper's evaluation harness stores
  them; the data dir is `--data-dir` or `$RLVR_DATA_DIR`;
- `hub:<benchmark>`: the same suite from the Hugging Face Hub by its documented dataset id
  (`HUB_IDS`; online only, `HF_HUB_OFFLINE=1` is respected);
- `organism` (every organism suite) or one of them (`organism-add`, ...): fixed sets, the
  same items for the same `limit` under any evaluation seed (the seed draws samples only, so
  two sampled evaluations with different seeds compare on the same items);
- a path to a `.jsonl` or `.parquet` file: a user suite named after the file's stem. Parquet in
  verl's training schema is read as such; other files need `fields` (`--field problem=question
  --field answer=final`) unless they have `problem` and `answer` columns.

Every item needs a non-empty gold answer: a file that lacks one is an error naming the file and
line, before anything is generated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.errors import UserError
from rlvr.problem import Problem

__all__ = [
    "GROUP_COLUMNS",
    "BENCHMARKS",
    "ORGANISM_ITEMS_SEED",
    "HUB_IDS",
    "benchmark_file",
    "hub_rows",
    "default_suite_specs",
    "load_suite",
    "load_suites",
    "parse_fields",
    "read_rows",
    "default_data_dir",
    "resolve_data_dir",
]


@dataclass(frozen=True)
class HubSource:
    dataset: str
    split: str
    config: str | None = None


# Public copies of the six suites (fields are mapped by the same row readers as the files).
HUB_IDS: dict[str, HubSource] = {
    "math500": HubSource("HuggingFaceH4/MATH-500", "test"),
    "aime24": HubSource("HuggingFaceH4/aime_2024", "train"),
    "aime25": HubSource("math-ai/aime25", "test"),
    "amc23": HubSource("math-ai/amc23", "test"),
    "minerva_math": HubSource("math-ai/minervamath", "test"),
    "olympiadbench": HubSource("Hothan/OlympiadBench", "train", "OE_TO_maths_en_COMP"),
}


def _text(row: Mapping, *keys: str) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _gold_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # AMC23 stores 27.0
    if isinstance(value, (list, tuple)):
        # OlympiadBench: a list of answers; the grader reads "a, b" as an unordered list.
        parts = [str(v).strip() for v in value if str(v).strip()]
        return ", ".join(parts) or None
    text = str(value).strip()
    return text or None


def _plain_row(row: Mapping) -> tuple[Any, Any, dict]:
    return _text(row, "problem", "question"), _gold_text(_text(row, "answer")), {}


def _minerva_row(row: Mapping) -> tuple[Any, Any, dict]:
    from rlvr.grading import last_boxed

    gold = _text(row, "answer")
    if gold is None and isinstance(row.get("solution"), str):
        gold = last_boxed(row["solution"])  # the harness's gold: the solution's last box
    return _text(row, "problem", "question"), _gold_text(gold), {"type": row.get("type")}


def _olympiad_row(row: Mapping) -> tuple[Any, Any, dict]:
    meta = {"is_multiple_answer": bool(row.get("is_multiple_answer")),
            "answer_type": row.get("answer_type"), "unit": row.get("unit"),
            "final_answer": row.get("final_answer")}
    return _text(row, "question", "problem"), _gold_text(_text(row, "final_answer", "answer")), meta


BENCHMARKS: dict[str, Callable[[Mapping], tuple[Any, Any, dict]]] = {
    "math500": _plain_row,
    "aime24": _plain_row,
    "aime25": _plain_row,
    "amc23": _plain_row,
    "minerva_math": _minerva_row,
    "olympiadbench": _olympiad_row,
}
_ID_KEYS = ("unique_id", "id", "idx")
# The organism suites' items are drawn once with this seed: a fixed set per suite, whose first
# `limit` items are what `--limit` takes. The evaluation seed used to draw them (two seeds, two
# item sets); runs from then still read, since every record carries its item's id.
ORGANISM_ITEMS_SEED = 0
# Columns a suite file may carry that accuracy is always split by when present (rlvr eval).
GROUP_COLUMNS = ("family", "subject", "level")


def default_data_dir() -> Path:
    """Where `rlvr data fetch` writes without --out: $XDG_CACHE_HOME/rlvr/data (~/.cache)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rlvr" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The data folder: the one given, else $RLVR_DATA_DIR, else `rlvr data fetch`'s default
    folder when it exists, else None."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("RLVR_DATA_DIR")
    if env:
        return Path(env)
    return default_data_dir() if default_data_dir().is_dir() else None


def parse_fields(pairs: Iterable[str] | None) -> dict[str, str]:
    """`["problem=question", "answer=final"]` → `{"problem": "question", "answer": "final"}`."""
    fields: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or name not in ("problem", "answer", "id") or not column:
            raise UserError(f"bad --field {pair!r}",
                            "write --field problem=COLUMN --field answer=COLUMN [--field id=COLUMN]")
        fields[name] = column
    return fields


def read_rows(path: Path, *, what: str = "suite file") -> list[tuple[int, dict]]:
    """(line number, row) of a jsonl or parquet file; bad bytes or JSON name file and line.

    The one reader of user-given row files (suites, training files, `rlvr grade` input);
    `what` names the file's role in the messages.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a {what}")
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist", "check the path")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise UserError(f"{path} is not a readable parquet file ({exc})") from exc
        return [(i + 1, row) for i, row in enumerate(rows)]
    out = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}:{number}: not UTF-8 text (byte {exc.start})",
                            "re-encode the file as UTF-8") from exc
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected a JSON object per line")
        out.append((number, row))
    return out


def _to_problems(rows: Sequence[tuple[int, Mapping]], reader, suite: str, where: str,
                 id_key: str | None = None, group_by: Sequence[str] = ()) -> list[Problem]:
    problems, seen = [], set()
    keep = (*GROUP_COLUMNS, *group_by)
    for position, (number, row) in enumerate(rows):
        text, gold, meta = reader(row)
        # Grouping columns ride along in meta, so evaluation can split accuracy by them.
        meta = {**{k: row[k] for k in keep if row.get(k) not in (None, "")}, **meta}
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{where}:{number}: no problem text", "check the problem field")
        if gold is None:
            raise UserError(f"{where}:{number}: missing or empty gold answer",
                            "every evaluation item needs an answer")
        keys = (id_key,) if id_key else _ID_KEYS
        raw_id = _text(row, *keys)
        item_id = str(raw_id) if raw_id is not None else str(position)
        if item_id in seen:
            item_id = f"{item_id}#{position}"  # keep ids unique within the suite
        seen.add(item_id)
        problems.append(Problem(id=item_id, problem=text, answer=gold, suite=suite,
                                meta={"line": number, **meta}))
    if not problems:
        raise UserError(f"{where} has no items")
    return problems


def _field_reader(fields: Mapping[str, str], where: str, columns: Iterable[str]):
    problem_key, answer_key = fields.get("problem", "problem"), fields.get("answer", "answer")
    missing = [k for k in (problem_key, answer_key) if k not in set(columns)]
    if missing:
        raise UserError(f"{where} has no column(s) {missing}",
                        "name them with --field problem=COLUMN --field answer=COLUMN")
    return lambda row: (row.get(problem_key), _gold_text(row.get(answer_key)), {})


def _load_file(path: Path, fields: Mapping[str, str], reader=None, name: str | None = None,
               group_by: Sequence[str] = ()):
    suite = name or path.stem
    if path.suffix not in (".jsonl", ".parquet"):
        raise UserError(f"suite file {path} is neither .jsonl nor .parquet")
    if path.suffix == ".parquet" and not fields and reader is None and _is_verl(path):
        from rlvr.data.verl_parquet import read_verl_parquet

        return read_verl_parquet(path, suite=suite)
    rows = read_rows(path)
    if reader is None:
        columns = set().union(*(row.keys() for _, row in rows)) if rows else set()
        reader = _field_reader(fields, str(path), columns)
    return _to_problems(rows, reader, suite, str(path), fields.get("id"), group_by)


def _is_verl(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path} is not a readable parquet file ({exc})") from exc
    return {"prompt", "reward_model"} <= names


def benchmark_file(name: str, data_dir: str | os.PathLike | None) -> Path | None:
    """The file of benchmark `name` in the data dir (`--data-dir`, else $RLVR_DATA_DIR)."""
    folder = resolve_data_dir(data_dir)
    if folder is None:
        return None
    for suffix in (".jsonl", ".parquet"):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def _load_benchmark(name: str, data_dir: Path | None, group_by: Sequence[str] = ()
                    ) -> list[Problem]:
    fetch = f"`rlvr data fetch {name} --out DIR` downloads it"
    if data_dir is None:
        raise UserError(f"suite {name!r} needs its data file",
                        f"pass --data-dir DIR (holding {name}.jsonl) or set RLVR_DATA_DIR; "
                        f"{fetch}")
    path = benchmark_file(name, data_dir)
    if path is None:
        raise UserError(f"no {name}.jsonl or {name}.parquet in {data_dir}",
                        f"point --data-dir at the folder holding the benchmark files; {fetch}")
    return _load_file(path, {}, BENCHMARKS[name], name, group_by)


def _load_hub(name: str, group_by: Sequence[str] = ()) -> list[Problem]:
    rows = [(i + 1, row) for i, row in enumerate(hub_rows(name))]
    return _to_problems(rows, BENCHMARKS[name], name, f"hub:{HUB_IDS[name].dataset}",
                        group_by=group_by)


def hub_rows(name: str) -> list[dict]:
    """Benchmark `name`'s rows as its public Hub copy stores them (online only)."""
    if name not in HUB_IDS:
        raise UserError(f"no Hub source for {name!r}", f"choose one of {', '.join(HUB_IDS)}")
    source = HUB_IDS[name]
    from rlvr.core.net import hub_endpoint, hub_offline, reachable

    if hub_offline() or not reachable(hub_endpoint()):
        raise UserError(f"{name} needs the Hugging Face Hub ({source.dataset}), which is "
                        "unreachable or disabled (HF_HUB_OFFLINE)",
                        f"run `rlvr data fetch {name} --out DIR` where the Hub is reachable, "
                        "then pass --data-dir DIR")
    import datasets

    try:
        table = datasets.load_dataset(source.dataset, source.config, split=source.split)
    except Exception as exc:  # network, auth and schema errors all mean "cannot load"
        raise UserError(f"could not load {source.dataset} from the Hub "
                        f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})") from exc
    return [dict(row) for row in table]


def load_suite(spec: str, *, data_dir: str | os.PathLike | None = None,
               fields: Mapping[str, str] | None = None, limit: int | None = None,
               organism_n: int = 200, group_by: Sequence[str] = ()
               ) -> dict[str, list[Problem]]:
    """One spec → {suite name: problems} (`organism` expands to several suites); `group_by`
    names row columns kept in `Problem.meta` beside GROUP_COLUMNS. No seed: every suite is a
    fixed list, so an evaluation's seed changes its samples, never its items."""
    spec = spec.strip()
    fields = dict(fields or {})
    if spec in BENCHMARKS:
        loaded = {spec: _load_benchmark(spec, resolve_data_dir(data_dir), group_by)}
    elif spec.startswith("hub:"):
        loaded = {spec[4:]: _load_hub(spec[4:], group_by)}
    elif spec == "organism" or spec.startswith("organism-"):
        loaded = _load_organism(spec, organism_n)
    elif spec.endswith((".jsonl", ".parquet")) or Path(spec).is_file():
        loaded = {Path(spec).stem: _load_file(Path(spec), fields, group_by=group_by)}
    else:
        raise UserError(f"unknown suite {spec!r}",
                        f"choose from {', '.join(BENCHMARKS)}, hub:NAME, organism, "
                        "organism-FAMILY, or a .jsonl/.parquet file")
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be >= 1, got {limit}")
        loaded = {name: problems[:limit] for name, problems in loaded.items()}
    return loaded


def _load_organism(spec: str, n: int) -> dict[str, list[Problem]]:
    from rlvr.organism import organism_suites

    loaders = organism_suites()
    names = sorted(loaders) if spec == "organism" else [spec]
    unknown = [name for name in names if name not in loaders]
    if unknown:
        raise UserError(f"unknown organism suite {unknown[0]!r}",
                        f"choose from {', '.join(sorted(loaders))}")
    return {name: loaders[name](n=n, seed=ORGANISM_ITEMS_SEED) for name in names}


def load_suites(specs: str | Sequence[str], **kwargs) -> dict[str, list[Problem]]:
    """Comma-separated specs (or a list) → {suite name: problems}, in the order given."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise UserError("no suites given", "pass --suites NAME[,NAME...]")
    suites: dict[str, list[Problem]] = {}
    for spec in specs:
        for name, problems in load_suite(spec, **kwargs).items():
            if name in suites:
                raise UserError(f"suite {name!r} is given twice", "list each suite once")
            suites[name] = problems
    for column in kwargs.get("group_by") or ():
        if not any(column in p.meta for items in suites.values() for p in items):
            raise UserError(f"--group-by {column}: no suite has a {column!r} column",
                            f"name a column of the suite files ({', '.join(suites)})")
    return suites


def default_suite_specs(model_path: str | os.PathLike | None) -> list[str]:
    """The organism's suites for the organism (or a checkpoint trained from it), else MATH500."""
    if model_path is None or _is_organism(Path(model_path)):
        return ["organism"]
    return ["math500"]


def _is_organism(path: Path) -> bool:
    """The shipped organism, a built one (it carries its build config), or a checkpoint of a
    run that started from one (runs/NAME/checkpoints/step-N → runs/NAME/config.toml)."""
    from rlvr.organism import default_path

    if path.resolve() == default_path().resolve() or (path / "build_config.toml").is_file():
        return True
    config = path.parent.parent / "config.toml"
    if path.parent.name in ("checkpoints", "snapshots") and config.is_file():
        import tomllib

        try:
            started = tomllib.loads(config.read_text(encoding="utf-8")).get("model", {}).get("path")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return False
        if started == "":
            return True  # the trainer's model.path "" means the shipped organism
        return bool(started) and Path(started) != path and _is_organism(Path(started))
    return False
