"""C1's coverage check (issue 25 item 5): the base and each seed's outcome run, evaluated with
many samples, compared item by item and combined over seeds; its reading rule by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from rundirs import make_run

from rlvr.core.stats import Estimate
from rlvr.errors import UserError
from rlvr.rl.checkpoint import STATE_FILE
from rlvr.study.coverage_check import (
    FOLDER,
    SELECTION,
    UNDECIDED,
    WIDER,
    coverage_checks,
    coverage_config,
    coverage_reading,
    coverage_targets,
)


def _demo(tmp_path: Path, base: list[str], trained: dict[int, list[str]]) -> Path:
    root = tmp_path / FOLDER
    make_run(root, "base", mode=None, evals={0: {"s": base}})
    for seed, items in trained.items():
        make_run(root / "working-required", f"outcome-s{seed}", mode=None,
                 evals={0: {"s": items}})
    return tmp_path


def _checks(out: Path, seeds: list[int], kinds=("working-required",)):
    """The demo's call: each kind's outcome runs (here only their names matter)."""
    runs = {kind: [out / kind / f"outcome-s{s}" for s in seeds] for kind in kinds}
    return coverage_checks(out, runs, seeds)


def test_sharper_seeds_lift_pass_at_1_and_not_pass_at_8(tmp_path):
    # base: each item right in 1 of 8 samples (pass@8 = 1); trained: 6 or 7 of 8 right
    base = ["CWWWWWWW"] * 12
    out = _demo(tmp_path, base, {0: ["CCCCCCWW"] * 12, 1: ["CCCCCCCW"] * 12,
                                 2: ["CCCCCCWW"] * 6 + ["CCCCCCCW"] * 6})
    check = _checks(out, [0, 1, 2], ("working-required", "variance-top"))
    assert list(check) == ["working-required"]  # a kind without runs is left out
    c = check["working-required"]
    assert c.samples == 8 and c.ks == (1, 2, 4, 8) and len(c.per_seed) == 3
    assert c.difference[0].value == pytest.approx((6 / 8 + 7 / 8 + 6.5 / 8) / 3 - 1 / 8)
    assert c.difference[0].has_interval and c.difference[0].low > 0
    assert c.difference[-1].value == pytest.approx(0) and c.reading.startswith(SELECTION)
    row = c.to_json()
    assert row["items"] == 12 and row["k"] == [1, 2, 4, 8]
    assert [s["only_trained"] for s in row["per_seed"]] == [0, 0, 0]


def test_an_item_only_training_solves_in_every_seed_reads_wider(tmp_path):
    base = ["WWWWWWWW"] + ["CWWWWWWW"] * 11
    out = _demo(tmp_path, base, {s: ["CWWWWWWW"] * 12 for s in (0, 1, 2)})
    c = _checks(out, [0, 1, 2])["working-required"]
    assert c.every_seed_only_trained == [("s", "s-0")]
    assert c.reading == WIDER
    # Solved only by one seed: not in every seed, so no longer WIDER on that account.
    out2 = _demo(tmp_path / "b", base, {0: ["CWWWWWWW"] * 12, 1: ["WWWWWWWW"] + ["CWWWWWWW"] * 11,
                                        2: ["WWWWWWWW"] + ["CWWWWWWW"] * 11})
    c2 = _checks(out2, [0, 1, 2])["working-required"]
    assert c2.every_seed_only_trained == [] and c2.reading != WIDER


def test_no_base_evaluation_no_check(tmp_path):
    assert _checks(tmp_path, [0]) == {}


@pytest.mark.parametrize(("low", "high", "only", "expected"), [
    (-0.05, 0.02, 0, SELECTION),      # high end at +2 points: within the band
    (-0.05, 0.021, 0, UNDECIDED),     # reaches past +2 without its low end above 0
    (0.001, 0.05, 0, WIDER),
    (-0.05, 0.0, 1, WIDER),           # an item solved only after training, in every seed
    (None, None, 0, UNDECIDED),       # no interval (fewer than 10 items)
])
def test_reading_rule(low, high, only, expected):
    method = "none" if low is None else "items"
    assert coverage_reading(Estimate(0.0, low, high, method, 12), only) == expected


def test_targets_and_config(tmp_path):
    from rlvr.rl.presets import resolve

    runs = [tmp_path / "wr" / f"outcome-s{s}" for s in (0, 1)]
    for run in runs:  # the latest complete checkpoint is the one evaluated
        for step in (20, 60):
            (run / "checkpoints" / f"step-{step}").mkdir(parents=True)
            (run / "checkpoints" / f"step-{step}" / STATE_FILE).write_bytes(b"")
    targets = coverage_targets(tmp_path, {"working-required": runs}, "")
    assert targets[0] == ("", tmp_path / FOLDER / "base")
    assert targets[2] == (str(runs[1] / "checkpoints" / "step-60"),
                          tmp_path / FOLDER / "working-required" / "outcome-s1")
    with pytest.raises(UserError, match="no checkpoint"):
        coverage_targets(tmp_path, {"variance-top": [tmp_path / "vt" / "outcome-s0"]}, "")
    config = resolve("organism", overrides={"eval": {"suites": ["organism"], "samples": 4}})
    wide = coverage_config(config, 32, 16)
    assert (wide.eval.samples, wide.eval.n_per_suite, wide.eval.greedy) == (32, 16, False)
    assert wide.eval.suites == config.eval.suites and wide.rollout == config.rollout


def test_claims_table_shows_coverage_and_an_identity_as_such(tmp_path):
    from rlvr.study.findings import details

    out = _demo(tmp_path, ["CWWWWWWW"] * 12, {0: ["CCCCCCWW"] * 12, 1: ["CCCCCCCW"] * 12})
    cover = _checks(out, [0, 1])["working-required"].to_json()
    line = details({"id": "C1", "skill_change": None, "previous_verdict": "inconclusive",
                    "coverage": cover})
    assert "coverage (8 samples × 12 items): pass@1 +" in line
    assert "pass@8 +0.0 (both solve every item)" in line and "per seed: 0/0" in line
    assert SELECTION in line
    same = details({"id": "C6", "matched_settings": {"value": 0.0, "ci": [0.0, 0.0]}})
    assert "same right answers as entropy-only on every item and seed" in same
    differ = details({"id": "C6", "matched_settings": {"value": 1.0, "ci": [-1.0, 3.0]}})
    assert "matched KL/weight decay +1.0 [-1.0, +3.0]" in differ


def test_a_base_that_solves_everything_is_at_the_ceiling(tmp_path):
    from rlvr.study.findings import coverage_line

    out = _demo(tmp_path, ["CWWWWWWW"] * 12, {0: ["CCCCCCWW"] * 12, 1: ["CCCCCCCW"] * 12,
                                               2: ["CCCCCCWW"] * 12})
    c = _checks(out, [0, 1, 2])["working-required"]
    assert c.base_at_ceiling and c.reading.startswith(SELECTION) and "at the ceiling" in c.reading
    assert c.meet_k == 8  # above the base up to k = 4, equal (both 100%) at k = 8
    line = coverage_line(c.to_json())
    assert "pass@8 +0.0 (both solve every item)" in line and "from k = 8" in line
    below = _demo(tmp_path / "b", ["WWWWWWWW"] + ["CWWWWWWW"] * 11, {0: ["CWWWWWWW"] * 12})
    assert not _checks(below, [0])["working-required"].base_at_ceiling
