"""kill -9 a training run mid-way, --resume it, and get the uninterrupted run's metrics and weights."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _tiny_lm import make_tiny_lm
from safetensors.torch import load_file

from rlvr.rl.checkpoint import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]  # the checkout under test, not an installed copy
TIMING = {"step_time_s", "tokens_per_s"}

# Runs in a subprocess: deterministic single-threaded CPU torch; with KILL_AT=k the process
# SIGKILLs itself at the start of step k (after step k-1's metrics line was written).
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from rlvr.rl.presets import resolve
    from rlvr.rl import loop
    from rlvr.rl import trainer as tr
    model, out, resume, kill_at, kill_in_save = sys.argv[1:6]
    config = resolve("organism", overrides={
        "model": {"path": model}, "steps": 7, "data": {"examples": ["add-327-415"]},
        "eval": {"suites": ["organism-add"], "n_per_suite": 2, "samples": 0},
        "rollout": {"n": 4, "max_new_tokens": 12},
        "reward": {"mode": "random"}, "optim": {"lr": 1e-2},
        "log": {"save_every": 2, "samples_every": 1, "eval_every": 3}})
    step = tr.Trainer.step
    def killing_step(self):
        if self.step_count + 1 == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self)
    tr.Trainer.step = killing_step
    if kill_in_save == "1":
        save = torch.save
        def killing_save(obj, f, *a, **k):
            if "step-4" in str(f):
                os.kill(os.getpid(), signal.SIGKILL)
            return save(obj, f, *a, **k)
        torch.save = killing_save
    loop.train(config, run_dir=out, resume=resume == "1", progress=False)
""")


def _run(tmp: Path, model: Path, out: Path, *, resume: bool, kill_at: int = 0,
         kill_in_save: bool = False) -> int:
    script = tmp / "run_train.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script), str(model), str(out), str(int(resume)), str(kill_at),
            str(int(kill_in_save))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)})
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stderr[-3000:])
    return proc.returncode


def _metrics(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k not in TIMING} for m in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    model = make_tiny_lm(tmp / "lm", eos_scale=3.0)
    assert _run(tmp, model, tmp / "full", resume=False) == 0
    return tmp, model, tmp / "full"


def _same_weights(a: Path, b: Path) -> None:
    wa = load_file(a / "checkpoints" / "step-7" / "model.safetensors")
    wb = load_file(b / "checkpoints" / "step-7" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _evaluated(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "eval").iterdir())


def test_kill_9_then_resume_equals_uninterrupted_run(reference):
    tmp, model, full = reference
    run = tmp / "killed"
    assert _run(tmp, model, run, resume=False, kill_at=6) == -signal.SIGKILL
    assert len(_metrics(run)) == 5  # steps 1-5 logged, last checkpoint at step 4
    assert latest_checkpoint(run).name == "step-4"
    assert _run(tmp, model, run, resume=True) == 0
    assert _metrics(run) == _metrics(full)
    _same_weights(run, full)
    steps = [json.loads(x)["step"] for x in (run / "samples.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # step 5's samples from before the kill were dropped
    # Resumed at step 4: evaluated on the schedule only (0, 3, 6, 7), no extra eval/step-4.
    assert _evaluated(run) == _evaluated(full) == ["step-0", "step-3", "step-6", "step-7"]


def test_kill_during_checkpoint_save_leaves_previous_one(reference):
    tmp, model, full = reference
    run = tmp / "killed_in_save"
    assert _run(tmp, model, run, resume=False, kill_in_save=True) == -signal.SIGKILL
    assert latest_checkpoint(run).name == "step-2"
    assert not (run / "checkpoints" / "step-4").exists()
    # The half-written step-4 is a scratch folder that no Hugging Face loader takes for a model.
    scratch = [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".step-4.")]
    assert len(scratch) == 1
    from transformers import AutoModelForCausalLM

    with pytest.raises((OSError, ValueError), match="config.json"):
        AutoModelForCausalLM.from_pretrained(scratch[0])
    assert _run(tmp, model, run, resume=True) == 0
    assert _metrics(run) == _metrics(full)
    _same_weights(run, full)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2", "step-4",
                                                                        "step-6", "step-7"]
    assert _evaluated(run) == _evaluated(full)
