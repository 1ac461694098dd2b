"""benchmarks/roofline.py at tiny settings: the JSON it prints has the issue's shape (its
speed is not tested: figures go to docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_roofline_quick_json_shape():
    from rlvr.organism import default_path

    if not (default_path() / "config.json").is_file():
        pytest.skip("the shipped organism is not in this checkout")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "roofline.py"), "--quick",
                          "--json"], capture_output=True, text=True, env=env, timeout=600,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ceiling_gflops"] > 0
    assert set(result["decode"]) == {"16", "64", "128"}
    figures = [*result["decode"].values(), result["update"], result["step"]]
    assert all(isinstance(x, float) and x > 0 for x in figures)
    # the bound of decode at 64 rows (its products alone) is reported beside it
    assert result["detail"]["products_only_64"]["gflops"] > 0
    # the ceiling counts whichever product is faster at each shape, the step's own included
    scan = result["detail"]["ceiling"]
    assert "linear" in scan["by_kernel"] and set(scan["kernel"]) == set(scan["shapes"])
    for shape, rate in scan["shapes"].items():
        assert rate == max(rates[shape] for rates in scan["by_kernel"].values())
    assert result["ceiling_gflops"] >= scan["gflops"] == max(scan["shapes"].values())
    assert set(result["fraction"]) == {"decode_16", "decode_64", "decode_128",
                                       "products_only_64", "update", "step"}
    for rows, rate in result["decode"].items():
        assert result["fraction"][f"decode_{rows}"] == pytest.approx(
            rate / result["ceiling_gflops"], abs=1e-3)
    # each figure also against the ceiling probes of its own rounds, never above the best
    assert set(result["fraction_beside"]) == set(result["fraction"])
    for key, share in result["fraction_beside"].items():
        beside = result["detail"][key]["ceiling_beside"]
        assert 0 < beside <= result["ceiling_gflops"]
        assert share == pytest.approx(result["detail"][key]["gflops"] / beside, abs=1e-3)
    assert set(result["load"]) == {"ceiling", "decode_16", "decode_64", "decode_128",
                                   "products_only_64", "update", "step"}
    assert all(isinstance(v, float) for v in result["load"].values())
    assert set(result["loaded"]) <= set(result["load"])
    # the decode cache the figures were taken with
    from rlvr.model import native_step

    assert result["decode_cache"] == str(native_step.cache_dtype()).removeprefix("torch.")


def test_half_cache_benchmark_compares_the_two_caches():
    """benchmarks/half_cache.py at tiny settings: both caches timed at each size, the distance
    between their next-token distributions within the tests' bound."""
    import torch

    from rlvr.model import native_step
    from rlvr.organism import default_path

    if not (default_path() / "config.json").is_file():
        pytest.skip("the shipped organism is not in this checkout")
    if native_step.step_function() is None or native_step.cache_dtype() != torch.float16:
        pytest.skip("no fp16 decode cache on this build")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RLVR_HALF_CACHE", None)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "half_cache.py"), "--json",
                          "--rounds", "1", "--new", "4"], capture_output=True, text=True,
                         env=env, timeout=600, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result["speed"]) == {"16", "64", "128"}
    for figures in result["speed"].values():
        assert figures["fp16"]["best_ms"] > 0 and figures["fp32"]["best_ms"] > 0
        assert figures["fp16_won"] in ("0 of 1", "1 of 1")
    distance = result["distance"]
    assert distance["caches"] == ["torch.float32", "torch.float16"]
    assert 0 <= distance["tv_median"] <= distance["tv_p99"] <= distance["tv_max"]
    assert distance["tv_max"] <= native_step.HALF_CACHE_TV
