"""benchmarks/gpu_check.py, checked on CPU at tiny shapes: its phases, its extrapolation, and the
native phase on a "bare" interpreter (only torch and transformers: the packages a GPU image
without network carries; the others are blocked at import)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SMALL = ["--cpu-smoke", "--max-new-tokens", "8", "--rollout-seqs", "16", "--update-seqs", "8",
         "--trl-seqs", "8"]
# What a bare image lacks (rlvr's own dependencies beyond torch/transformers, and TRL's).
BARE_BLOCKS = ("typer", "rich", "math_verify", "latex2sympy2_extended", "pyarrow", "datasets",
               "trl", "accelerate", "scipy", "matplotlib", "tensorboard", "tomli_w", "antlr4")


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extrapolation_is_linear_in_responses_and_length():
    gc = _module()
    native = {"rollout_s": 10.0, "rollout_seqs": 512, "update_s": 5.0, "update_seqs": 64}
    out = gc.extrapolate(native, {"step_s": 30.0, "responses": 64, "vllm": False}, 3072)
    assert out["native_s_per_step"] == 10 * 2 + 5 * 16
    assert out["native_rollout_share"] == 0.2
    # HF generate is reported as measured, never projected to a paper step
    assert "trl_vllm_s_per_step" not in out and "trl_hf_generate_note" in out
    colocate = {"vllm": True, "responses": 64, "step_s": 40.0, "generate_s": 20.0,
                "update_s": 14.0, "weight_sync_s": 2.0, "sleep_wake_s": 4.0}
    out = gc.extrapolate(native, colocate, 3072)
    assert out["trl_vllm_s_per_step"] == (20 + 14) * 16 + 2 + 4
    assert out["assumptions"]
    assert gc.extrapolate(native, {"skipped": "x"}, 1536)["native_s_per_step"] == 200
    assert "native_s_per_step" not in gc.extrapolate({"error": "timed out"}, {}, 3072)


@pytest.mark.slow
def test_cpu_smoke_runs_every_phase(tmp_path):
    out = tmp_path / "gc"
    done = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "gpu_check.json").read_text())
    native = result["native"]
    assert native["rollout_seqs"] == 16 and native["update_seqs"] == 8
    assert 0 < native["rollout_tokens"] <= 16 * 8 and native["rollout_tokens_per_s"] > 0
    assert native["update_tokens_per_s"] > 0 and result["native_s_per_step"] > 0
    if importlib.util.find_spec("trl") is not None:
        assert result["trl"]["responses"] == 8 and result["trl"]["vllm"] is False
        assert "HF generate" in result["trl"]["generation"]
        assert "trl_vllm_s_per_step" not in result
    plan = native["plan_vs_measured_gib"]
    assert plan["rollout"]["plan"] > 0 and plan["update"]["plan"] > 0
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result


BARE = """
import sys
for name in {blocks!r}:
    sys.modules[name] = None  # import fails, find_spec says "not installed"
import importlib.util
spec = importlib.util.spec_from_file_location("gpu_check", {script!r})
gc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gc)
gc.make_model(gc.Path({out!r}) / "model", gc.SMOKE, "cpu")
sys.exit(gc.main({argv!r}))
"""


@pytest.mark.slow
def test_native_phase_needs_only_torch_and_transformers(tmp_path):
    out = str(tmp_path / "bare")
    results = {}
    for phase in ("native", "trl"):
        code = BARE.format(blocks=set(BARE_BLOCKS), script=str(SCRIPT), out=out,
                           argv=[*SMALL, "--out", out, "--phase", phase])
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path, env={"PYTHONPATH": str(ROOT),
                                                              "OMP_NUM_THREADS": "1",
                                                              "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr[-3000:]
        results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["native"]["rollout_tokens_per_s"] > 0 and results["native"]["update_s"] > 0
    assert results["trl"]["skipped"].startswith("not installed: trl")
