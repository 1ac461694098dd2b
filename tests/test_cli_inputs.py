"""Commands accept what their neighbours accept (issue #16, items 7, 9 and 11).

One pool loader serves `rlvr train --pool`, `rlvr select --pool` and `rlvr export verl --pool`;
`rlvr report` takes a folder of runs (a demo's) and skips the report page among globbed paths.
"""

from __future__ import annotations

import json

import pytest
from rundirs import make_run

from rlvr.cli import main
from rlvr.rl.config import DataConfig
from rlvr.rl.problem_sets import training_problems


@pytest.fixture
def demo_like(tmp_path):
    """A folder of runs as `rlvr demo` leaves it, report.html included."""
    demo = tmp_path / "demo"
    for name, mode in (("outcome", "outcome"), ("format-only", "format")):
        make_run(demo, name, mode=mode, train_acc=[0.5, 1.0],
                 evals={0: {"math": "CWUN"}, 2: {"math": "CCUW"}})
    (demo / "report.html").write_text("<html>an earlier report</html>")
    return demo


def test_report_accepts_a_folder_of_runs(demo_like, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(demo_like), "-o", str(out)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "outcome" in printed and "format-only" in printed


def test_report_skips_a_report_among_globbed_paths(demo_like, tmp_path, capsys):
    paths = sorted(str(p) for p in demo_like.iterdir())  # what `rlvr report demo/*` passes
    assert any(p.endswith("report.html") for p in paths)
    assert main(["report", *paths, "-o", str(tmp_path / "r.html"), "-q"]) == 0, \
        capsys.readouterr().err


@pytest.mark.parametrize("pool", ["jsonl", "organism"])
def test_train_accepts_the_pools_select_accepts(tmp_path, pool):
    if pool == "jsonl":
        spec = tmp_path / "pool.jsonl"
        spec.write_text("".join(json.dumps({"id": str(i), "problem": f"{i}+1=",
                                            "answer": str(i + 1)}) + "\n" for i in range(3)))
        wanted = "2"
    else:
        spec, wanted = "organism-add:3", None
    if wanted is None:
        from rlvr.data.pools import load_pool

        wanted = load_pool(spec)[1].id
    problems = training_problems(DataConfig(pool=str(spec), examples=(wanted,)))
    assert [p.id for p in problems] == [wanted]


@pytest.mark.parametrize("kind", ["jsonl", "organism"])
def test_export_verl_accepts_the_pools_train_accepts(tmp_path, kind, capsys):
    import pyarrow.parquet as pq

    from rlvr.data.pools import load_pool

    if kind == "jsonl":
        spec = tmp_path / "pool.jsonl"
        spec.write_text("".join(json.dumps({"id": str(i), "problem": f"{i}+1=",
                                            "answer": str(i + 1)}) + "\n" for i in range(3)))
    else:
        spec = "organism-add:3"
    wanted = load_pool(spec)[1]
    out = tmp_path / "e"
    code = main(["export", "verl", "--examples", wanted.id, "--pool", str(spec), "--copies", "4",
                 "--val-suites", "organism-add", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert len(rows) == 4 and all(r["reward_model"]["ground_truth"] == wanted.answer
                                  for r in rows)


def test_export_verl_follows_the_umask(tmp_path, capsys):
    import os
    import stat

    from rlvr.data.pools import load_pool

    example = load_pool("organism-add:3")[0].id
    old = os.umask(0o027)
    try:
        code = main(["export", "verl", "--examples", example, "--pool", "organism-add:3",
                     "--copies", "2", "--val-suites", "none", "--out", str(tmp_path / "e")])
    finally:
        os.umask(old)
    assert code == 0, capsys.readouterr().err
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "e").iterdir()}
    assert stat.S_IMODE((tmp_path / "e").stat().st_mode) == 0o750
    assert modes["run_1shot.sh"] == 0o750 and modes["train.parquet"] == 0o640
