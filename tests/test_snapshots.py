"""Checkpoints that fit: the newest resumable checkpoints kept, bf16 snapshots at named steps,
`rlvr eval --run` reading both (the native engine; tests/test_trl_engine.py has TRL's)."""

from __future__ import annotations

import json

import pytest
import torch

from rlvr.cli import main


@pytest.mark.slow
def test_native_run_keeps_two_checkpoints_and_its_snapshots(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--example", "organism-add:3", "--steps", "3", "--out", str(run),
                 "--no-eval", "--no-progress", "--set", "rollout.n=4",
                 "--set", "rollout.max_new_tokens=8", "--set", "optim.micro_batch_size=4",
                 "--set", "log.save_every=1", "--set", "log.keep_last=2",
                 "--set", "log.snapshot_steps=[0,1]"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2", "step-3"]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0", "step-1"]
    from safetensors.torch import load_file

    weights = load_file(run / "snapshots" / "step-1" / "model.safetensors")
    assert all(t.dtype == torch.bfloat16 for t in weights.values())
    config = json.loads((run / "snapshots" / "step-1" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--suites", "organism-add", "--limit", "4",
                 "--samples", "0"]) == 0, capsys.readouterr().err
    assert {p.name for p in (run / "eval").iterdir()} == {f"step-{i}" for i in range(4)}
    # a snapshot named with --model is known as its run's step, as a checkpoint is
    capsys.readouterr()
    assert main(["eval", "--model", str(run / "snapshots" / "step-1"), "--suites",
                 "organism-add", "--limit", "2", "--samples", "0",
                 "--out", str(tmp_path / "ev")]) == 0
    assert "is step 1 of" in capsys.readouterr().out
    assert (tmp_path / "ev" / "eval" / "step-1" / "summary.json").is_file()
    # a resumed run continues from the newest checkpoint and keeps the snapshots
    assert main(["train", "--out", str(run), "--resume", "--steps", "4", "--no-progress"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-3", "step-4"]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0", "step-1"]
