"""Coverage (issue 23 item 4): pass@k curves with intervals, where they cross, and the items
one side alone solves, by hand on made-up records, and in `decompose --json`."""

from __future__ import annotations

import itertools
import json
from math import comb

import pytest
from rundirs import make_run

from rlvr.cli import main
from rlvr.decomposition.coverage import coverage
from rlvr.rundir.read import EvalRecord, EvalStep


def _step(correct_per_item: list[list[bool]]) -> EvalStep:
    records = tuple(EvalRecord("s", f"i{j}", s + 1, "boxed", ok, ok)
                    for j, item in enumerate(correct_per_item) for s, ok in enumerate(item))
    return EvalStep(0, {"s": records}, None)


def test_a_sharper_trained_model_crosses_a_broader_base():
    # base: every item 2 of 8 right (pass@1 0.25, pass@8 1); trained: half the items always
    # right, half never (pass@k 0.5 for every k)
    base = _step([[True, True] + [False] * 6 for _ in range(40)])
    trained = _step([[True] * 8 for _ in range(20)] + [[False] * 8 for _ in range(20)])
    cover = coverage(base, trained)
    assert cover.ks == (1, 2, 4, 8)
    for k, b in zip(cover.ks, cover.base, strict=True):
        assert b.value == pytest.approx(1 - comb(6, k) / comb(8, k))
    assert [t.value for t in cover.trained] == pytest.approx([0.5] * 4)
    assert cover.crossing_k == 4 and cover.not_above_k == 2  # +3.6 points at k = 2: noise
    assert cover.difference[0].low > 0 and cover.difference[-1].high < 0
    assert not cover.only_trained and len(cover.only_base) == 20
    only = cover.only_base[0]
    assert (only.correct, only.samples, only.other_samples) == (2, 8, 8)
    assert only.other_rate_upper95 == pytest.approx(1 - 0.05 ** (1 / 8))


def test_the_curves_match_a_brute_force_over_subsets():
    rows = [[True, False, False, True], [False] * 4, [True, False, True, True]] * 4
    cover = coverage(_step(rows), _step(rows))
    for k, est in zip(cover.ks, cover.base, strict=True):
        brute = sum(sum(any(c) for c in itertools.combinations(item, k)) / comb(4, k)
                    for item in rows) / len(rows)
        assert est.value == pytest.approx(brute)
    assert all(d.value == 0 for d in cover.difference) and cover.crossing_k == 1


def test_decompose_json_has_coverage(tmp_path, capsys):
    run = make_run(tmp_path, "o", evals={0: {"s": ["CWWW"] * 6 + ["WWWW"] * 6},
                                          3: {"s": ["CCCC"] * 6 + ["CWWW"] * 6}})
    assert main(["decompose", str(run), str(run), "--json"]) == 0
    cover = json.loads(capsys.readouterr().out)["coverage"]
    assert cover["k"] == [1, 2, 4] and cover["crossing_k"] is None
    assert cover["only_trained"]["n"] == 6 and cover["only_base"]["n"] == 0
    assert cover["only_trained"]["items"][0]["other_samples"] == 4
    assert cover["difference"][0]["value"] == pytest.approx(100 * (0.625 - 0.125))
