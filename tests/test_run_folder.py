"""A run folder is complete, portable and readable by others; a finished command says what it did.

Issue #16: training rows are snapshotted (item 5), files respect the umask (item 7), the end of
`rlvr train` prints the accuracy table (item 14), and every bar shares one display with no
third-party bars (item 13).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from rlvr.cli import main

# A one-example organism run small enough for a test: 2 rollouts of 8 tokens, no evaluation.
TINY = ["--set", "rollout.n=2", "--set", "rollout.max_new_tokens=8", "--set", "log.save_every=1"]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_resume_from_another_directory_after_the_training_file_is_gone(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    Path("mine.jsonl").write_text('{"problem": "12+34=", "answer": "46"}\n')
    assert main(["train", "--train", "mine.jsonl", "--steps", "1", "--no-eval", *TINY,
                 "--out", "r"]) == 0
    rows = [json.loads(line) for line in (work / "r" / "train_problems.jsonl").open()]
    assert [(r["problem"], r["answer"]) for r in rows] == [("12+34=", "46")]

    # The source is gone and the run moved: resume reads the run's own snapshot.
    Path("mine.jsonl").unlink()
    moved = tmp_path / "elsewhere" / "r"
    shutil.move(work / "r", moved)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", str(moved), "--resume", "--steps", "2"]) == 0
    assert [json.loads(x)["step"] for x in (moved / "metrics.jsonl").open()] == [1, 2]
    config = tomllib.loads((moved / "config.toml").read_text())
    assert config["data"]["train_file"] == str(work / "mine.jsonl")  # recorded, for reference


def test_run_files_follow_the_umask(tmp_path, monkeypatch, umask_022):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--example", "organism-add:3", "--steps", "1", "--no-eval", *TINY,
                 "--out", "r"]) == 0
    run = tmp_path / "r"
    for path in (run / "config.toml", run / "train_problems.jsonl", run / "metrics.jsonl",
                 run / "checkpoints" / "step-1" / "model.safetensors",
                 run / "checkpoints" / "step-1" / "config.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for path in (run / "checkpoints", run / "checkpoints" / "step-1"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path, mask):
    from rlvr.rundir.write import atomic_dir, atomic_write_text

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as scratch:
            (scratch / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~mask


def test_train_ends_with_the_accuracy_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--example", "organism-add:3", "--steps", "1", *TINY,
                 "--eval-suites", "organism-add", "--set", "eval.n_per_suite=2",
                 "--set", "eval.samples=0", "--no-progress", "--out", "r"]) == 0
    out = capsys.readouterr().out
    # The newest evaluation's table (as `rlvr eval --run` prints) and the curve over steps.
    assert "step 1:" in out and "organism-add" in out
    assert "strict accuracy (%) over steps" in out
    assert out.strip().endswith("run written to r")


def test_train_without_evaluation_says_how_to_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--example", "organism-add:3", "--steps", "1", "--no-eval", *TINY,
                 "--no-progress", "--out", "r"]) == 0
    assert not (tmp_path / "r" / "eval").exists()  # --no-eval: not even step 0
    assert "rlvr eval --run r" in capsys.readouterr().out


def test_nested_bars_share_one_display(monkeypatch, capsys):
    from rlvr.core.progress import bar

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich renders as on a terminal
    with bar("GRPO", 2, keep=True) as outer:
        with bar("eval organism-add", 3) as inner:  # a second live display would raise
            inner(3)
        outer(1, info="acc 0.50")
        outer(1)
    err = capsys.readouterr().err
    assert "GRPO" in err and "2/2" in err and "acc 0.50" in err


def test_no_third_party_bars_after_loading_a_model():
    from transformers.utils import logging

    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    logging.enable_progress_bar()
    load_model(default_path(), device="cpu")
    assert not logging.is_progress_bar_enabled()  # transformers' "Loading weights" stays off


def test_training_shows_every_evaluation_and_each_step_phase(tmp_path, monkeypatch):
    import contextlib

    import rlvr.evaluation.evaluate
    from rlvr.rl.loop import train
    from rlvr.rl.presets import resolve
    from rlvr.rl.runlog import RunLog

    shown, phases = [], []
    real_bar, real_phase = rlvr.evaluation.evaluate.bar, RunLog.phase

    @contextlib.contextmanager
    def spy_bar(description, total, *, enabled=True, **kwargs):
        if enabled:
            shown.append(description)
        with real_bar(description, total, enabled=enabled, **kwargs) as advance:
            yield advance

    def spy_phase(self, text):
        phases.append(text)
        real_phase(self, text)

    monkeypatch.setattr(rlvr.evaluation.evaluate, "bar", spy_bar)
    monkeypatch.setattr(RunLog, "phase", spy_phase)
    config = resolve("organism", overrides={
        "steps": 1, "data": {"examples": ["organism-add:3"]},
        "rollout": {"n": 2, "max_new_tokens": 8},
        "eval": {"suites": ["organism-add"], "n_per_suite": 2, "samples": 0}})
    train(config, run_dir=tmp_path / "r", progress=True)
    assert shown == ["eval organism-add", "eval organism-add"]  # step 0 and step 1
    assert phases == ["step 1: sampling", "step 1: grading", "step 1: updating"]


def test_a_failed_command_removes_only_what_it_created(tmp_path):
    from rlvr.rundir.write import fresh_run_dir

    with pytest.raises(KeyboardInterrupt), fresh_run_dir(tmp_path / "a" / "b" / "run") as run:
        (run / "config.toml").write_text("seed = 0\n")
        raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()  # the parents it made go too

    (tmp_path / "mine").mkdir()  # an empty folder the user made stays, empty
    with pytest.raises(ValueError), fresh_run_dir(tmp_path / "mine") as run:
        (run / "partial.jsonl").write_text("{}\n")
        raise ValueError
    assert list((tmp_path / "mine").iterdir()) == []

    with pytest.raises(ValueError), fresh_run_dir(tmp_path / "kept", keep=lambda: True) as run:
        (run / "metrics.jsonl").write_text("{}\n")
        raise ValueError
    assert (tmp_path / "kept" / "metrics.jsonl").is_file()  # resumable: kept
