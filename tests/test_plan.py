"""`rlvr train --plan`: the memory/disk/time model, its exits, and its memory model against
measured peaks on CPU (the organism and a small random Qwen2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr.cli import main
from rlvr.errors import UserError
from rlvr.rl import plan as planner
from rlvr.rl.presets import resolve

HERE = Path(__file__).resolve().parent
QWEN25_MATH_15B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                   "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                   "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                   "max_position_embeddings": 4096, "tie_word_embeddings": True}
# The stated tolerance: each phase's measured steady-state peak within 30% of the plan, plus
# 8 MiB for page and allocator granularity (which dominates the organism's few MiB).
REL_TOL, ABS_TOL_MIB = 0.30, 8.0


@pytest.fixture(autouse=True)
def roomy_disk(monkeypatch):
    """The plan compares its disk estimate with the free space under --out: tests fix that
    space (1 TiB; the disk tests set their own) so they pass on any machine's disk."""
    monkeypatch.setattr(planner, "_free_gib", lambda out: 1024.0)


@pytest.fixture
def qwen_config(tmp_path) -> Path:
    folder = tmp_path / "qwen25-math-1.5b-shape"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN25_MATH_15B))
    return folder


def _plan_json(args, capsys) -> tuple[int, dict | None, str]:
    code = main(["train", *args, "--plan", "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip().startswith("{") else None), out.err


def test_paper_plan_on_an_h100_fits_memory_and_500_gb_of_disk(qwen_config, tmp_path, capsys):
    for engine in ("trl", "native"):
        code, plan, err = _plan_json(["--engine", engine, "--preset", "paper", "--model",
                                      str(qwen_config), "--example", "124", "--out",
                                      str(tmp_path / "run"), "--gpu", "h100"], capsys)
        assert code == 0, err
        assert 1.50e9 < plan["params"] < 1.56e9  # Qwen2.5-Math-1.5B: 1.54 B
        for key in ("memory_gb", "peak_memory_gb", "gpu_memory_gb", "disk_gb", "step_seconds",
                    "run_hours", "fits", "assumptions"):
            assert key in plan
        assert plan["fits"] and plan["peak_memory_gb"] <= plan["gpu_memory_gb"] <= 80
        assert plan["disk_gb"] * 2**30 / 1e9 <= 500
        assert plan["step_seconds"] > 0 and plan["run_hours"] > 0
        assert len(plan["assumptions"]) >= 5
    assert set(plan["memory_gb"]) == {"rollout", "update"}
    assert plan["rollout_batch"] <= plan["rollout_batch_fit"]  # the native batch fits


def test_plan_text_prints_every_assumption(qwen_config, tmp_path, capsys):
    code = main(["train", "--engine", "trl", "--preset", "paper", "--model", str(qwen_config),
                 "--example", "124", "--out", str(tmp_path / "r"), "--plan", "--gpu", "h200"])
    text = capsys.readouterr().out
    assert code == 0
    for needle in ("memory, generate", "memory, update", "disk:", "time:", "assumptions:",
                   "vLLM K/V cache", "TFLOP/s"):
        assert needle in text


def test_plan_of_pi1_needs_no_data_but_a_run_does(qwen_config, tmp_path, capsys, monkeypatch):
    """The one command of docs/gpu.md with --plan, before `rlvr data fetch`: the plan reads
    only config.json; the run itself says which fetch to run."""
    monkeypatch.delenv("RLVR_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["--engine", "trl", "--preset", "paper", "--model", str(qwen_config), "--example",
            "pi1", "--out", str(tmp_path / "run")]
    code, plan, err = _plan_json([*args, "--gpu", "h100"], capsys)
    assert code == 0 and plan["fits"], err
    assert main(["train", *args]) == 2
    assert "rlvr data fetch dsr_sub" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_plan_without_a_gpu_asks_for_one(qwen_config, tmp_path, capsys):
    code, plan, _ = _plan_json(["--preset", "organism", "--example", "organism-add:3",
                                "--out", str(tmp_path / "r")], capsys)
    assert code == 0 and plan["step_seconds"] is None
    assert any("--gpu h100|h200|a100" in a for a in plan["assumptions"])


def test_plan_exits_2_with_one_line_when_memory_does_not_fit(qwen_config, tmp_path, capsys):
    code, plan, err = _plan_json(["--preset", "paper", "--model", str(qwen_config),
                                  "--example", "124", "--no-eval", "--out", str(tmp_path / "r"), "--gpu",
                                  "h100", "--set", "rollout.batch_size=1024"], capsys)
    assert code == 2 and not plan["fits_memory"]
    assert len(err.strip().splitlines()) == 1 and "GiB" in err


def test_plan_exits_2_when_the_disk_under_out_is_too_small(qwen_config, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setattr(planner, "_free_gib", lambda out: 40.0)
    code, plan, err = _plan_json(["--preset", "paper", "--model", str(qwen_config),
                                  "--example", "124", "--no-eval", "--out", str(tmp_path / "r"), "--gpu",
                                  "h100"], capsys)
    assert code == 2 and plan["fits_memory"] and not plan["fits_disk"]
    assert "free under --out" in err and len(err.strip().splitlines()) == 1


def test_a_run_is_refused_before_it_writes_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(planner, "_free_gib", lambda out: 1e-6)
    out = tmp_path / "run"
    code = main(["train", "--example", "organism-add:3", "--out", str(out), "--steps", "1",
                 "--no-eval", "--no-progress"])
    assert code == 2 and "free under --out" in capsys.readouterr().err
    assert not out.exists()


def test_read_shape_needs_a_config_json(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        planner.read_shape(tmp_path)


def test_disk_of_the_paper_preset_is_the_kept_checkpoints_and_snapshots(qwen_config):
    cfg = resolve("paper", overrides={"data": {"examples": ["124"]}})
    plan = planner.make_plan(cfg, planner.read_shape(qwen_config), engine="native",
                             gpu=planner.GPUS["h100"], out=None)
    one = plan.params * 12 / 2**30  # fp32 weights + two Adam moments
    assert plan.disk["checkpoints"] == pytest.approx(3 * one, rel=0.01)  # 2 kept + 1 writing
    assert plan.disk["snapshots"] == pytest.approx(8 * plan.params * 2 / 2**30)


def _small_qwen(folder: Path) -> Path:
    import torch
    from _tiny_lm import make_char_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = make_char_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=2048, hidden_size=512, intermediate_size=1536,
                         num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         pad_token_id=0, eos_token_id=1, bos_token_id=None)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_model_agrees_with_measured_cpu_peaks(tmp_path):
    qwen = str(_small_qwen(tmp_path / "qwen"))
    base = {"data": {"examples": ["organism-add:3"]}, "eval": {"suites": []},
            "algo": {"skip_no_signal": False}}
    specs = [{"preset": "organism", "overrides": base}]
    for checkpointing in (False, True):
        specs.append({"preset": "organism", "overrides": {
            **base, "model": {"path": qwen, "gradient_checkpointing": checkpointing},
            "rollout": {"max_new_tokens": 48, "max_prompt_tokens": 64}}})
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="16384",
               MALLOC_TRIM_THRESHOLD_="0",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    done = subprocess.run([sys.executable, str(HERE / "_plan_probe.py"), json.dumps(specs),
                           str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, result in zip(("organism", "qwen2", "qwen2 checkpointed"), results, strict=True):
        for phase, planned in result["planned_mib"].items():
            measured = result["measured_mib"][phase]
            assert abs(measured - planned) <= REL_TOL * planned + ABS_TOL_MIB, \
                (name, phase, measured, planned)
