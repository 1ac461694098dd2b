"""`--example pi1` / `pi13`: the paper's pool found in --data-dir, $RLVR_DATA_DIR, or the folder
`rlvr data fetch` writes by default; else one line naming the fetch to run."""

from __future__ import annotations

import pytest

from rlvr.cli import main
from rlvr.errors import UserError
from rlvr.rl.problem_sets import PAPER_EXAMPLES, paper_pool


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.delenv("RLVR_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _pool(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dsr_sub.parquet").write_bytes(b"stand-in")
    return folder / "dsr_sub.parquet"


def test_aliases_are_the_papers_indices():
    assert PAPER_EXAMPLES == {"pi1": "124", "pi13": "682"}


def test_lookup_order(no_data, monkeypatch):
    default = _pool(no_data / "cache" / "rlvr" / "data")
    assert paper_pool(None) == default.resolve()  # rlvr data fetch's default folder
    env = _pool(no_data / "env")
    monkeypatch.setenv("RLVR_DATA_DIR", str(env.parent))
    assert paper_pool(None) == env.resolve()  # $RLVR_DATA_DIR before the default
    given = _pool(no_data / "given")
    assert paper_pool(str(given.parent)) == given.resolve()  # --data-dir first


def test_a_missing_pool_is_one_line_naming_the_fetch(no_data, capsys):
    with pytest.raises(UserError, match="rlvr data fetch dsr_sub math500"):
        paper_pool(None)
    code = main(["train", "--engine", "trl", "--preset", "paper", "--example", "pi1",
                 "--out", str(no_data / "run"), "--no-eval"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "rlvr data fetch dsr_sub math500" in err[0]
    assert not (no_data / "run").exists()


def test_an_explicit_pool_wins(no_data, tmp_path, capsys):
    code = main(["train", "--example", "pi1", "--pool", "organism-add:5", "--out",
                 str(tmp_path / "run"), "--no-eval", "--steps", "1", "--no-progress"])
    assert code == 2  # index 124 is not in a 5-item organism pool: the pool given was used
    assert "124" in capsys.readouterr().err
