"""Statistics on known samples, tiny samples, reproducibility and interval coverage."""

import math

import numpy as np
import pytest

from perfsuite.analysis import stats


def test_describe_known_sample():
    est = stats.describe([1.0, 2.0, 3.0, 4.0, 5.0])
    assert est.n == 5
    assert est.median == 3.0
    assert (est.q1, est.q3, est.iqr) == (2.0, 4.0, 2.0)
    assert est.relative_iqr == pytest.approx(2 / 3)
    assert est.noisy
    assert 1.0 <= est.ci_low <= 3.0 <= est.ci_high <= 5.0
    assert est.note == ""


def test_describe_is_reproducible_and_seeded():
    x = np.random.default_rng(3).lognormal(0, 0.3, 40)
    a, b = stats.describe(x, seed=1), stats.describe(x, seed=1)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    c = stats.describe(x, seed=2)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_quiet_sample_is_not_noisy():
    est = stats.describe([1.00, 1.01, 0.99, 1.02, 0.98, 1.00])
    assert not est.noisy
    assert est.relative_iqr < 0.1


def test_one_sample_has_no_interval():
    est = stats.describe([2.5])
    assert est.median == 2.5 and est.iqr == 0.0
    assert math.isnan(est.ci_low) and math.isnan(est.ci_high)
    assert not est.has_interval
    assert "no interval" in est.note
    assert est.to_dict()["ci_low"] is None


def test_two_samples_interval_is_their_range():
    est = stats.describe([1.0, 2.0])
    assert est.median == 1.5
    assert (est.ci_low, est.ci_high) == (1.0, 2.0)
    assert "degenerate" in est.note


def test_equal_samples_zero_width():
    est = stats.describe([0.7] * 4)
    assert (est.ci_low, est.ci_high) == (0.7, 0.7)
    assert "equal" in est.note


def test_empty_sample():
    est = stats.describe([])
    assert est.n == 0 and math.isnan(est.median)
    assert est.note == "no samples"


def test_nan_rejected():
    with pytest.raises(ValueError):
        stats.describe([1.0, float("nan")])


def test_speedup_of_paired_samples():
    base = [2.0, 4.0, 3.0, 2.2, 2.6]
    new = [1.0, 2.0, 1.5, 1.1, 1.3]
    est = stats.speedup(base, new)
    assert est.median == pytest.approx(2.0)
    assert (est.ci_low, est.ci_high) == (pytest.approx(2.0), pytest.approx(2.0))


def test_pairing_cancels_drift():
    drift = np.linspace(1.0, 3.0, 12)
    est = stats.speedup(5.0 * drift, drift * np.random.default_rng(0).lognormal(0, 0.01, 12))
    assert est.ci_low > 4.8 and est.ci_high < 5.2


def test_paired_ratios_checks():
    with pytest.raises(ValueError):
        stats.paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        stats.paired_ratios([1.0], [0.0])


def test_ratio_of_medians():
    old = [1.0, 1.1, 0.9, 1.0, 1.05]
    ratio, low, high = stats.ratio_of_medians(old, [2 * v for v in old])
    assert ratio == pytest.approx(2.0)
    assert low <= 2.0 <= high
    assert low > 1.5
    ratio, low, high = stats.ratio_of_medians([1.0], [2.0])
    assert ratio == 2.0 and math.isnan(low) and math.isnan(high)


def test_mann_whitney_known_values():
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert stats.mann_whitney([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    assert stats.mann_whitney([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert math.isnan(stats.mann_whitney([], [1.0]))


def test_min_p_value():
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.min_p_value(4, 4) == pytest.approx(2 / 70)
    assert stats.min_p_value(1, 1) == 1.0
    assert stats.min_p_value(2345, 2345) == 0.0  # thousands of steps: no overflow


def test_paired_tests_of_log_ratios():
    # 13 rounds 12% slower, one 14% faster by more than any other differs: the signed-rank test ranks it
    # first; t weighs it by its size, and has no 2/2**n floor
    ratios = [1.12 * (1 + 0.002 * i) for i in range(13)] + [0.86]
    assert stats.wilcoxon_log(ratios) == pytest.approx(2 * 110 / 2**14)  # 110 of 2**14 sign patterns rank ≤ 14
    assert stats.ttest_log(ratios) < 0.001
    assert stats.ttest_log([1.0, 1.0, 1.0]) == 1.0 and stats.ttest_log([1.1, 1.1]) == 0.0
    assert math.isnan(stats.ttest_log([1.2])) and math.isnan(stats.ttest_log([]))
    same = [1.03, 0.97, 1.01, 0.99, 1.02, 0.98]
    assert stats.ttest_log(same) > 0.5


def test_mean_interval():
    mean, low, high = stats.mean_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and low < 2.5 < high
    mean, low, high = stats.mean_interval([3.0])
    assert mean == 3.0 and math.isnan(low) and math.isnan(high)


def test_median_interval_coverage():
    """Over 200 seeded trials the 95% interval holds the true median 88–99% of the time."""
    true_median = 1.0  # lognormal(0, s) has median exp(0)
    rng = np.random.default_rng(12345)
    hits = 0
    trials = 200
    for trial in range(trials):
        sample = rng.lognormal(0.0, 0.5, 30)
        low, high = stats.bootstrap_median_ci(sample, seed=trial, n_resamples=999)
        hits += low <= true_median <= high
    assert 0.88 <= hits / trials <= 0.99


def test_speedup_interval_coverage():
    """Paired ratios with a known median speedup of 3: coverage stays in a sane band."""
    rng = np.random.default_rng(777)
    hits = 0
    for trial in range(200):
        new = rng.lognormal(0.0, 0.2, 20)
        base = 3.0 * new * rng.lognormal(0.0, 0.1, 20)
        est = stats.speedup(base, new, seed=trial, n_resamples=999)
        hits += est.ci_low <= 3.0 <= est.ci_high
    assert 0.88 <= hits / 200 <= 0.99
