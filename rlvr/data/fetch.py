"""`rlvr data`: the six evaluation suites and the paper's training pool, from public sources.

`fetch(names, out)` writes each data set into `out` in the form the other commands read:
`<suite>.jsonl` for the six benchmarks (pass `--data-dir OUT`), `dsr_sub.parquet` for the
paper's 1,209-problem training pool (pass `--pool OUT/dsr_sub.parquet`). Rows are written as
their source stores them (gold strings untouched: the suite readers map each source's fields),
and only after the row count matches the published size and every row reads as a problem with
a gold answer, so a partial or changed copy is never taken for the real one. `status(folder)`
is what `rlvr data list` prints: every known data set and whether `folder` holds it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rlvr.errors import UserError

__all__ = ["DATASETS", "DataSet", "fetch", "status"]

_PAPER_REPO = "https://github.com/ypwang61/One-Shot-RLVR"
_DSR_SUB_URL = ("https://raw.githubusercontent.com/ypwang61/One-Shot-RLVR/main/"
                "data/train/one_shot_rlvr/dsr_sub.parquet")


@dataclass(frozen=True)
class DataSet:
    name: str
    rows: int  # the published size: a copy with another count is refused
    file: str  # written under --out
    source: str  # where it comes from, as `rlvr data list` shows it
    what: str


def _benchmark(name: str, rows: int, what: str) -> DataSet:
    from rlvr.data.suites import HUB_IDS

    hub = HUB_IDS[name]
    where = f"hf:{hub.dataset}" + (f" ({hub.config})" if hub.config else "") + f" [{hub.split}]"
    return DataSet(name, rows, f"{name}.jsonl", where, what)


DATASETS: dict[str, DataSet] = {d.name: d for d in (
    _benchmark("math500", 500, "MATH500: 500 competition problems, subject and level"),
    _benchmark("aime24", 30, "AIME 2024"),
    _benchmark("aime25", 30, "AIME 2025"),
    _benchmark("amc23", 40, "AMC 2023"),
    _benchmark("minerva_math", 272, "Minerva math (gold: the solution's last \\boxed{})"),
    _benchmark("olympiadbench", 675, "OlympiadBench, English open-ended maths"),
    DataSet("dsr_sub", 1209, "dsr_sub.parquet", f"{_PAPER_REPO} data/train/one_shot_rlvr/",
            "the paper's training pool (verl parquet; π1 = index 124)"),
)}


def fetch(names: Sequence[str], out: str | os.PathLike, *, overwrite: bool = False,
          download: Callable[[str], bytes] | None = None) -> list[Path]:
    """Fetch `names` (all when empty) into `out`; returns the files written.

    `download(name)` returns the bytes to write (jsonl or parquet); the default reads the
    public source. Everything asked for is checked before anything is fetched.
    """
    chosen = _names(names)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if not overwrite:
        there = [DATASETS[n].file for n in chosen if (out / DATASETS[n].file).exists()]
        if there:
            raise UserError(f"{out} already holds {', '.join(there)}",
                            "pass --overwrite to fetch again, or another --out")
    download = download or _download
    written = []
    for name in chosen:
        data = download(name)
        _verify(DATASETS[name], data)
        from rlvr.rundir.write import atomic_write_bytes

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / DATASETS[name].file, data)
        written.append(out / DATASETS[name].file)
    return written


def status(folder: str | os.PathLike | None) -> list[dict]:
    """One row per known data set: name, rows, source, and what `folder` holds of it."""
    out = []
    for d in DATASETS.values():
        path = Path(folder) / d.file if folder is not None else None
        state = "—" if path is None else "missing"
        if path is not None and path.is_file():
            try:
                found = _count(d, path.read_bytes())
            except UserError as exc:
                state = f"unreadable ({exc.problem})"
            else:
                state = "present" if found == d.rows else f"{found} rows (expected {d.rows})"
        out.append({"name": d.name, "rows": d.rows, "file": d.file, "source": d.source,
                    "what": d.what, "state": state})
    return out


def _names(names: Sequence[str]) -> list[str]:
    chosen = [n.strip() for item in names for n in item.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in DATASETS]
    if unknown:
        raise UserError(f"unknown data set {unknown[0]!r}",
                        f"choose from {', '.join(DATASETS)} (`rlvr data list`)")
    return list(dict.fromkeys(chosen)) or list(DATASETS)


def _download(name: str) -> bytes:
    if name == "dsr_sub":
        return _download_url(_DSR_SUB_URL, name)
    from rlvr.data.suites import hub_rows

    rows = hub_rows(name)
    # As stored: json keeps strings, numbers and lists exactly; the readers map the fields.
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                   for row in rows).encode("utf-8")


def _download_url(url: str, name: str) -> bytes:
    import urllib.error
    import urllib.request

    from rlvr.core.net import reachable

    if not reachable(url):
        raise UserError(f"{name} is downloaded from {url.split('/')[2]}, which is unreachable",
                        f"run `rlvr data fetch {name} --out DIR` where it is reachable, then "
                        "copy DIR here")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"downloading {name} from {url} failed ({exc})") from exc


def _verify(d: DataSet, data: bytes) -> None:
    found = _count(d, data)
    if found != d.rows:
        raise UserError(f"{d.name} from {d.source} has {found} rows, not the published "
                        f"{d.rows}; nothing written", "the source changed: report it")


def _count(d: DataSet, data: bytes) -> int:
    """Rows that read as problems with a gold answer (the readers' own checks, so a file that
    passes here loads in `rlvr eval` / `rlvr train`)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / d.file
        path.write_bytes(data)
        if d.name == "dsr_sub":
            from rlvr.data.verl_parquet import read_verl_parquet

            return len(read_verl_parquet(path, missing_answer="keep"))
        from rlvr.data.suites import load_suite

        return len(load_suite(d.name, data_dir=tmp)[d.name])
