"""`rlvr data fetch` / `rlvr data list`: the public data sets, verified before they are written.

No network: the downloader is replaced by one serving local fixtures (rows built here, or
../shared/data where present), so these tests check what `fetch` does with what a source
returns: row counts, gold strings kept byte for byte, files the readers load, offline errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.cli import main
from rlvr.data import fetch as fetch_mod
from rlvr.errors import UserError


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _math_rows(n: int) -> list[dict]:
    # Gold strings as sources store them: LaTeX, a float-looking number, a list-like string.
    golds = ["\\frac{4}{3}", "27.0", "\\left( 3, \\frac{\\pi}{2} \\right)", "12.8"]
    return [{"problem": f"What is {i}?", "answer": golds[i % 4], "subject": "Algebra",
             "level": 1 + i % 5, "unique_id": f"test/{i}.json"} for i in range(n)]


def _pool_bytes(tmp: Path, n: int) -> bytes:
    from rlvr.data.verl_parquet import write_verl_parquet
    from rlvr.problem import Problem

    path = tmp / "pool.parquet"
    write_verl_parquet([Problem(id=str(i), problem=f"{i}+1=", answer=str(i + 1), suite="dsr",
                                meta={"index": i}) for i in range(n)], path)
    return path.read_bytes()


@pytest.fixture
def fake_sources(tmp_path, monkeypatch):
    """Every data set at its published size; `sizes` overrides one to test the count check."""
    sizes: dict[str, int] = {}

    def download(name: str) -> bytes:
        rows = sizes.get(name, fetch_mod.DATASETS[name].rows)
        if name == "dsr_sub":
            return _pool_bytes(tmp_path, rows)
        return _jsonl(_math_rows(rows))

    monkeypatch.setattr(fetch_mod, "_download", download)
    return sizes


def test_fetch_writes_every_set_the_readers_load(tmp_path, fake_sources, capsys):
    out = tmp_path / "data"
    assert main(["data", "fetch", "--out", str(out)]) == 0
    from rlvr.data.suites import load_suites
    from rlvr.data.verl_parquet import read_verl_parquet

    suites = load_suites(["math500", "aime24", "aime25", "amc23", "olympiadbench"],
                         data_dir=out)
    assert {k: len(v) for k, v in suites.items()} == {
        "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "olympiadbench": 675}
    assert suites["math500"][1].answer == "27.0"  # kept as stored, not re-formatted
    assert suites["math500"][2].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert len(read_verl_parquet(out / "dsr_sub.parquet")) == 1209
    assert "dsr_sub: 1209 rows" in capsys.readouterr().out


def test_a_source_with_another_row_count_writes_nothing(tmp_path, fake_sources):
    fake_sources["aime24"] = 29
    with pytest.raises(UserError, match="29 rows, not the published 30"):
        fetch_mod.fetch(["aime24"], tmp_path / "data")
    assert not (tmp_path / "data" / "aime24.jsonl").exists()


def test_fetch_refuses_to_overwrite_and_unknown_names(tmp_path, fake_sources, capsys):
    out = tmp_path / "data"
    assert main(["data", "fetch", "amc23", "--out", str(out)]) == 0
    assert main(["data", "fetch", "amc23", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "fetch", "amc23", "--out", str(out), "--overwrite"]) == 0
    assert main(["data", "fetch", "math5000", "--out", str(out)]) == 2
    assert "math5000" in capsys.readouterr().err


def test_offline_fetch_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["data", "fetch", "math500", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "HF_HUB_OFFLINE" in err
    monkeypatch.setattr("rlvr.core.net.reachable", lambda url, timeout_s=3.0: False)
    assert main(["data", "fetch", "dsr_sub", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "raw.githubusercontent.com" in err
    assert not (tmp_path / "d").exists()


def test_list_shows_known_and_present(tmp_path, fake_sources, capsys):
    out = tmp_path / "data"
    fetch_mod.fetch(["math500", "dsr_sub"], out)
    (out / "aime24.jsonl").write_bytes(_jsonl(_math_rows(3)))  # a partial copy
    states = {row["name"]: row["state"] for row in fetch_mod.status(out)}
    assert states == {"math500": "present", "aime24": "3 rows (expected 30)",
                      "aime25": "missing", "amc23": "missing", "minerva_math": "missing",
                      "olympiadbench": "missing", "dsr_sub": "present"}
    assert main(["data", "list", "--dir", str(out)]) == 0
    listing = capsys.readouterr().out
    assert "One-Shot-RLVR" in listing and "HuggingFaceH4/MATH-500" in listing


@pytest.mark.shared
def test_the_shared_copies_pass_the_checks(shared_dir, tmp_path, monkeypatch):
    """The team's copies of the real files (as the paper's harness stores them) are what a
    fetch must produce: served as the source, every one passes the count and reader checks."""
    files = {name: shared_dir / "data" / ("train" if name == "dsr_sub" else "benchmarks")
             / d.file for name, d in fetch_mod.DATASETS.items()}
    monkeypatch.setattr(fetch_mod, "_download", lambda name: files[name].read_bytes())
    written = fetch_mod.fetch([], tmp_path / "data")
    assert len(written) == 7
    for path in written:
        assert path.read_bytes() == files[next(
            n for n, d in fetch_mod.DATASETS.items() if d.file == path.name)].read_bytes()
    assert all(row["state"] == "present" for row in fetch_mod.status(tmp_path / "data"))
