"""Ctrl-C gives one line and exit code 130: no traceback, from any process, at any time.

Each test starts `python -m rlvr ...` in a process group of its own, waits for a readiness
signal (a file the command writes, or a line it prints), then sends SIGINT to the whole group,
as a terminal does on Ctrl-C, so worker processes get it too (issue #16, item 3). A command
whose work cannot be resumed (eval, demo) leaves no folder; a training run that logged a step
keeps its folder and says how to resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# `block`: a module whose import stops (printing READY) until the signal arrives;
# `warm`: start the grader's worker processes first, as a long run has them.
RUNNER = textwrap.dedent("""
    import importlib.abc, runpy, signal, sys
    # A shell without job control starts background commands with SIGINT ignored, and an
    # ignored signal stays ignored across exec: act as a terminal's foreground process does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    block, warm, *args = sys.argv[1:]
    if warm == "1":
        from rlvr.grading import warm_up
        warm_up()
    if block:
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == block:
                    sys.meta_path.remove(self)
                    print("READY: importing " + name, file=sys.stderr, flush=True)
                    signal.pause()
                return None
        sys.meta_path.insert(0, Block())
    sys.argv = ["rlvr", *args]
    runpy.run_module("rlvr", run_name="__main__", alter_sys=True)
""")

LIMIT_S = 600  # a loaded 2-core CI runner; the tests normally take seconds


def _start(tmp: Path, args: list[str], *, block: str = "", warm: bool = False):
    script = tmp / "runner.py"
    script.write_text(RUNNER)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(script), block, str(int(warm)), *args],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for(proc, ready) -> None:
    """Poll until `ready()` holds; the command must still be running then."""
    deadline = time.monotonic() + LIMIT_S
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"ended (rc {proc.returncode}) before it was ready:\n{err[-3000:]}")
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.05)


def _ctrl_c(proc) -> tuple[int, str]:
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=LIMIT_S)
    return proc.returncode, err


def _assert_clean(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    said = [line for line in lines if line.startswith("interrupted")]
    assert len(said) == 1 and lines[-1] == said[0], err[-3000:]
    return said[0]


def _group_gone(pgid: int) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_during_training_with_grader_workers(tmp_path):
    proc = _start(tmp_path, ["train", "--example", "organism-add:3", "--steps", "500",
                             "--set", "eval.n_per_suite=2", "--set", "rollout.n=4",
                             "--out", "r"], warm=True)
    _wait_for(proc, lambda: (tmp_path / "r" / "metrics.jsonl").is_file())
    line = _assert_clean(*_ctrl_c(proc))
    assert "--resume" in line  # a run with logged steps is kept, and the line says how to go on
    assert (tmp_path / "r" / "config.toml").is_file()
    assert _group_gone(proc.pid)


def test_ctrl_c_during_evaluation_leaves_no_folder(tmp_path):
    proc = _start(tmp_path, ["eval", "--suites", "organism", "--limit", "200", "--out", "e"],
                  warm=True)
    _wait_for(proc, lambda: any((tmp_path / "e" / "eval" / "step-0").glob("*.jsonl")))
    _assert_clean(*_ctrl_c(proc))
    assert not (tmp_path / "e").exists()
    assert _group_gone(proc.pid)


def test_ctrl_c_during_demo_ablations_stops_the_workers(tmp_path):
    proc = _start(tmp_path, ["demo", "--quick", "--out", "d"])
    ablations = [tmp_path / "d" / "variance-top" / name / "metrics.jsonl"
                 for name in ("outcome-s0", "format-only-s0")]
    _wait_for(proc, lambda: any(path.is_file() for path in ablations))
    _assert_clean(*_ctrl_c(proc))
    assert not (tmp_path / "d").exists()  # a demo has no resume: nothing half-done stays
    assert _group_gone(proc.pid)  # the worker processes went with it


def test_sigterm_to_the_demo_alone_stops_its_workers(tmp_path):
    # `kill PID` reaches the main process only (no terminal sends it to the group): the demo
    # must still take its pool workers down and leave no folder.
    proc = _start(tmp_path, ["demo", "--quick", "--out", "d"])
    ablations = [tmp_path / "d" / "variance-top" / name / "metrics.jsonl"
                 for name in ("outcome-s0", "format-only-s0")]
    _wait_for(proc, lambda: any(path.is_file() for path in ablations))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=LIMIT_S)
    _assert_clean(proc.returncode, err)
    assert not (tmp_path / "d").exists()
    assert _group_gone(proc.pid)


@pytest.mark.parametrize(("block", "args"), [
    ("typer", ["demo", "--quick", "--out", "d"]),  # importing the command line itself
    ("torch", ["demo", "--quick", "--out", "d"]),  # importing inside the command
    ("torch", ["train", "--example", "organism-add:3", "--out", "d"]),
], ids=["cli-import", "demo-import", "train-import"])
def test_ctrl_c_while_importing(tmp_path, block, args):
    proc = _start(tmp_path, args, block=block)
    # Readiness: the blocked import printed its line (stderr is unbuffered).
    before = []
    while not (line := proc.stderr.readline()).startswith("READY"):
        assert line, "".join(before)  # ended without reaching the import
        before.append(line)
    code, err = _ctrl_c(proc)
    _assert_clean(code, "".join(before) + err)
    assert not (tmp_path / "d").exists()
