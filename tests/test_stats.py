"""Intervals over items and seeds (rlvr.core.stats), against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from rlvr.core.stats import (
    across_seeds,
    item_accuracy,
    paired_gain,
    percentile_interval,
    resample_weights,
    within_noise,
)


def test_resample_weights_draw_n_items_per_row_and_follow_the_seed():
    weights = resample_weights(7, 50, 3)
    assert weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()
    assert (weights == resample_weights(7, 50, 3)).all()
    assert not (weights == resample_weights(7, 50, 4)).all()
    # every item is drawn about equally often over many resamples
    assert np.allclose(resample_weights(4, 20_000, 0).mean(axis=0), 1.0, atol=0.03)


def test_item_accuracy_pools_responses_and_keeps_an_items_samples_together():
    est = item_accuracy([[True, True], [False, False], [True, False]])
    assert est.value == pytest.approx(0.5)
    assert est.method == "items" and est.n == 3
    assert est.low < 0.5 < est.high
    # a resample holds whole items: with one all-right and one all-wrong item, a resample's
    # accuracy is 0, 0.5 or 1, never a mixture of samples across items
    est = item_accuracy([[True] * 4, [False] * 4], n_resamples=400)
    assert est.low == 0.0 and est.high == 1.0


def test_greedy_records_get_an_interval_from_the_items_alone():
    est = item_accuracy([[True]] * 30 + [[False]] * 70)
    assert est.value == pytest.approx(0.3)
    # binomial standard error at n = 100 is 4.6 points, so the 95% interval is about ±9
    assert 0.15 < est.high - est.low < 0.22


def test_paired_gain_of_identical_sides_is_exactly_zero():
    items = [[True, False], [False, False], [True, True]]
    est = paired_gain(items, items)
    assert (est.value, est.low, est.high) == (0.0, 0.0, 0.0)
    assert est.within_noise


def test_pairing_removes_the_item_difficulty_from_the_gain():
    # easy items stay right, hard items stay wrong, 10 items gain one sample in two:
    # unpaired resampling would mix item difficulty into the interval; paired cannot
    base = [[True] * 2] * 45 + [[False] * 2] * 45 + [[False, False]] * 10
    trained = [[True] * 2] * 45 + [[False] * 2] * 45 + [[True, False]] * 10
    est = paired_gain(base, trained)
    assert est.value == pytest.approx(0.05)
    assert 0 < est.low < 0.05 < est.high < 0.1
    assert not est.within_noise


def test_percentile_interval_ignores_nan_resamples():
    low, high = percentile_interval(np.array([np.nan, *range(101)], dtype=float))
    assert (low, high) == pytest.approx((2.5, 97.5))


def test_across_seeds_t_interval_by_hand():
    est = across_seeds([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, df=2) = 4.3027, half-width 4.3027 / sqrt(3) = 2.4841
    assert est.value == 2.0
    assert (est.low, est.high) == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-4)
    assert est.method == "seeds" and est.per_seed == (1.0, 2.0, 3.0)


def test_one_seed_has_no_interval_and_is_not_called_noise():
    est = across_seeds([0.4])
    assert est.low is None and not est.has_interval and not est.within_noise
    assert est.points() == {"value": 40.0, "ci": None}


def test_identical_seeds_have_a_zero_width_interval():
    est = across_seeds([0.2, 0.2])
    assert (est.low, est.high) == (0.2, 0.2)


def test_within_noise_and_points():
    assert within_noise(-0.01, 0.02) and not within_noise(0.01, 0.02)
    assert not within_noise(None, 0.1)
    est = paired_gain([[False]] * 4, [[True]] * 4)
    assert est.points() == {"value": 100.0, "ci": [100.0, 100.0]}
    assert est.scaled(-1).low == -1.0
