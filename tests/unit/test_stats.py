"""Per-example statistics: exact McNemar (per seed and pooled), Holm, and the bootstrap intervals, on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advtrain.stats import (
    Bootstrap,
    cell_interval,
    discordant,
    holm,
    mcnemar_exact,
    mean_replicates,
    over_seeds,
    paired_difference,
    percentile_interval,
    ratio_replicates,
    stratified_mcnemar,
)


def test_mcnemar_is_the_exact_binomial_by_hand():
    # b = 1, c = 6: n = 7 discordant pairs, P(X <= 1) = (C(7,0) + C(7,1)) / 2^7 = 8/128, two-sided: 16/128.
    assert mcnemar_exact(1, 6) == pytest.approx(16 / 128)
    assert mcnemar_exact(6, 1) == pytest.approx(16 / 128)
    # b = 0, c = 5: 2 * 1/32.
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_discordant_counts_and_the_pooled_test_over_seeds():
    first = np.array([1, 1, 0, 0, 1], dtype=bool)
    second = np.array([0, 1, 1, 0, 0], dtype=bool)
    assert discordant(first, second) == (2, 1)
    with pytest.raises(ValueError, match="differ in length"):
        discordant(first, second[:3])
    # Two seeds (1, 3) and (0, 3): pooled b = 1, c = 6, the exact binomial of the sums.
    pooled = stratified_mcnemar([(1, 3), (0, 3)])
    assert (pooled["b"], pooled["c"]) == (1, 6) and pooled["p"] == pytest.approx(16 / 128)
    assert pooled["p_per_stratum"] == [pytest.approx(mcnemar_exact(1, 3)), pytest.approx(mcnemar_exact(0, 3))]


def test_holm_step_down_by_hand():
    adjusted = holm([0.01, 0.04, 0.03, math.nan, 0.5])
    # m = 4 valid p-values: 0.01*4 = 0.04; 0.03*3 = 0.09; 0.04*2 = 0.08 -> 0.09 (monotone); 0.5*1 = 0.5.
    assert adjusted[[0, 1, 2, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert math.isnan(adjusted[3])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_the_bootstrap_interval_of_a_constant_is_a_point():
    settings = Bootstrap(resamples=200)
    assert cell_interval([np.full(40, 85.0)], settings, "cell") == (85.0, 85.0)
    assert cell_interval([np.full(40, 85.0), np.full(30, 85.0)], settings, "cell") == (85.0, 85.0)
    assert percentile_interval(np.full(10, 3.0)) == (3.0, 3.0)
    assert all(math.isnan(v) for v in cell_interval([], settings, "cell"))


def test_identical_outcomes_give_no_difference_and_p_one():
    rng = np.random.default_rng(1)
    outcome = rng.random(200) < 0.7
    pairs = [(outcome, outcome), (outcome[::-1], outcome[::-1])]
    diff = paired_difference([(100.0 * x, 100.0 * y) for x, y in pairs], Bootstrap(resamples=300), "same")
    assert diff == {"difference": 0.0, "low": 0.0, "high": 0.0}
    assert stratified_mcnemar([discordant(x, y) for x, y in pairs])["p"] == 1.0


def test_a_method_always_right_is_significantly_better():
    rng = np.random.default_rng(2)
    baseline = [rng.random(100) < 0.6 for _ in range(3)]
    always = [np.ones(100, dtype=bool)] * 3
    test = stratified_mcnemar([discordant(a, b) for a, b in zip(always, baseline, strict=True)])
    assert test["c"] == 0 and test["b"] == sum(int((~b).sum()) for b in baseline)
    assert test["p"] < 1e-20
    diff = paired_difference([(100.0 * a, 100.0 * b) for a, b in zip(always, baseline, strict=True)],
                             Bootstrap(resamples=500), "always")
    expected = np.mean([100.0 * (1 - b.mean()) for b in baseline])
    assert diff["difference"] == pytest.approx(expected)
    assert 0 < diff["low"] < diff["difference"] < diff["high"]


def test_count_resampling_matches_index_resampling_in_spread():
    rng = np.random.default_rng(3)
    values = (rng.random(400) < 0.3).astype(float)
    reps = mean_replicates(values, 4000, np.random.default_rng(4))
    p = values.mean()
    assert reps.mean() == pytest.approx(p, abs=0.003)
    assert reps.std() == pytest.approx(math.sqrt(p * (1 - p) / len(values)), rel=0.08)
    # Jointly resampled columns: a ratio whose denominator can vanish gives NaN, left out of the interval.
    ratios = ratio_replicates(np.array([[1.0], [0.0]]), np.array([[1.0], [0.0]]), 200, np.random.default_rng(5))
    assert np.isnan(ratios).any() and np.nanmax(ratios) == 1.0


def test_seeds_are_resampled_in_the_second_stage():
    one = np.arange(10.0)
    assert (over_seeds([one], np.random.default_rng(0)) == one).all()
    two = over_seeds([np.zeros(1000), np.ones(1000)], np.random.default_rng(0))
    # Drawing two of two seeds with replacement: both 0 (1/4), both 1 (1/4), one each (1/2).
    assert set(np.unique(two)) == {0.0, 0.5, 1.0}
    assert (two == 0.5).mean() == pytest.approx(0.5, abs=0.05)


def test_each_cell_has_its_own_stream():
    settings = Bootstrap(resamples=300, seed=7)
    values = [np.random.default_rng(0).random(50)]
    assert cell_interval(values, settings, "a", 1) == cell_interval(values, settings, "a", 1)
    assert cell_interval(values, settings, "a", 1) != cell_interval(values, settings, "b", 1)
    assert Bootstrap.from_config({"bootstrap_resamples": 10, "confidence": 0.9, "seed": 3}) == Bootstrap(10, 0.9, 3)
    assert Bootstrap.from_config(None) == Bootstrap()


def test_every_method_is_resampled_with_the_same_indices():
    """Common random numbers: a seed's resamples depend on the key and the number of examples, not on the values, so a
    column read alone gets the replicates it gets beside another, and identical outcomes get identical intervals."""
    rng = np.random.default_rng(8)
    first = (rng.random(120) < 0.6).astype(float)
    second = first.copy()
    second[:5] = 1.0 - second[:5]
    both = ratio_replicates(np.column_stack([first, second]), np.ones((120, 2)), 500, np.random.default_rng(9))
    alone = ratio_replicates(second, np.ones(120), 500, np.random.default_rng(9))
    assert np.array_equal(both[:, 1], alone[:, 0])
    settings = Bootstrap(resamples=400, seed=2)
    a = {1: 100.0 * first, 2: 100.0 * second}
    b = {1: 100.0 * first.copy(), 2: 100.0 * second.copy()}
    assert cell_interval(a, settings, "table2", "MR") == cell_interval(b, settings, "table2", "MR")
    # The resamples are drawn as indices: a 0/1 column's replicates are multiples of 1/n.
    assert np.allclose(np.round(alone * 120), alone * 120)


def test_printed_bounds_round_outwards_to_two_decimals():
    from advtrain.tables import round_bound

    assert (round_bound(33.0, "low"), round_bound(53.0, "high")) == (33.0, 53.0)  # 53.0 * 100 is not above 5300
    assert (round_bound(33.019, "low"), round_bound(53.025, "high")) == (33.01, 53.03)
    assert (round_bound(66.6666, "low"), round_bound(66.6666, "high")) == (66.66, 66.67)
    assert math.isnan(round_bound(math.nan, "low"))
