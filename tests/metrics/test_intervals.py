"""Bootstrap intervals over images: known answers, the delta-method width on a large sample,
pairing, and bad input (reading per-image files and comparison tables:
tests/reports/test_tables.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_pose.metrics.intervals import Interval, paired_difference_interval, ratio_interval


def binomial_images(n: int, p: float, joints: int = 14, seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = np.full(n, joints)
    return rng.binomial(joints, p, size=n), counts


def test_width_matches_the_delta_method_on_independent_joints() -> None:
    """900 images of 14 independent joints detected with p = 0.36: the ratio's standard error
    is sqrt(p (1 - p) / 12,600) = 0.00428, a 95 % half-width of 1.96 x that = 0.0084."""
    hits, counts = binomial_images(900, 0.36)
    interval = ratio_interval(hits, counts)
    assert interval.estimate == pytest.approx(hits.sum() / counts.sum(), abs=1e-12)
    assert interval.low < interval.estimate < interval.high
    p = interval.estimate
    half_width = 1.96 * np.sqrt(p * (1 - p) / counts.sum())
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.12)
    assert interval.images == 900 and interval.method == "BCa" and interval.confidence == 0.95


def test_correlated_joints_widen_the_interval() -> None:
    """When a person's joints are all right or all wrong (one draw per image), the images
    are the independent units: the interval is sqrt(14) ~ 3.7x wider than for 14 independent
    joints."""
    rng = np.random.default_rng(1)
    all_or_nothing = 14 * rng.binomial(1, 0.36, size=900)
    wide = ratio_interval(all_or_nothing, np.full(900, 14))
    narrow = ratio_interval(*binomial_images(900, 0.36))
    ratio = (wide.high - wide.low) / (narrow.high - narrow.low)
    assert ratio == pytest.approx(np.sqrt(14), rel=0.2)


def test_the_same_model_twice_differs_by_exactly_zero() -> None:
    hits, counts = binomial_images(200, 0.5)
    interval = paired_difference_interval(hits, counts, hits, counts)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert interval.method == "percentile"  # BCa is undefined when every resample is equal
    assert not interval.excludes_zero


def test_pairing_detects_a_small_consistent_gain() -> None:
    """b = a with one more joint detected on 10 % of the images (+0.7 points): the paired
    interval excludes 0; the two unpaired intervals overlap (they would call it noise)."""
    hits_a, counts = binomial_images(900, 0.36)
    rng = np.random.default_rng(2)
    gain = (rng.random(900) < 0.1) & (hits_a < counts)
    hits_b = hits_a + gain
    difference = paired_difference_interval(hits_b, counts, hits_a, counts)
    assert difference.estimate == pytest.approx(gain.sum() / counts.sum(), abs=1e-12)
    assert difference.excludes_zero and difference.low > 0
    a, b = ratio_interval(hits_a, counts), ratio_interval(hits_b, counts)
    assert b.low < a.high  # unpaired: the intervals overlap
    assert difference.percent_difference() == "+0.6 [+0.5, +0.7]"


def test_a_noise_difference_is_not_an_effect() -> None:
    hits_a, counts = binomial_images(300, 0.4, seed=3)
    hits_b, _ = binomial_images(300, 0.4, seed=4)  # the same model, other noise
    difference = paired_difference_interval(hits_a, counts, hits_b, counts)
    assert difference.low < 0 < difference.high and not difference.excludes_zero


def test_degenerate_and_seeded() -> None:
    perfect = ratio_interval(np.full(50, 14), np.full(50, 14))
    assert (perfect.low, perfect.high) == (1.0, 1.0)
    hits, counts = binomial_images(100, 0.3)
    assert ratio_interval(hits, counts, seed=5) == ratio_interval(hits, counts, seed=5)
    assert Interval(0.361, 0.34, 0.382, 0.95, 9, "BCa").percent() == "36.1 [34.0, 38.2]"


@pytest.mark.parametrize(
    ("hits", "counts", "match"),
    [
        ([[1, 2]], [[2, 2]], "1-D arrays"),
        ([1, 2], [2, 2, 2], "same length"),
        ([1], [2], "at least 2 images"),
        ([1, np.nan], [2, 2], "finite"),
        ([3, 1], [2, 2], "0 <= hits <= counts"),
        ([0, 0], [0, 0], "sum of counts is 0"),
    ],
)
def test_bad_input_names_the_problem(hits, counts, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ratio_interval(np.array(hits), np.array(counts))


def test_paired_models_need_the_same_images() -> None:
    hits, counts = binomial_images(10, 0.5)
    with pytest.raises(ValueError, match="same images, got 10 and 9"):
        paired_difference_interval(hits, counts, hits[:9], counts[:9])


def test_95_percent_intervals_cover_the_true_value_about_95_percent_of_the_time() -> None:
    """Coverage (Efron & Tibshirani 1993, §12.5): 200 seeded data sets of 40 images, each
    image with 1-14 counted joints detected independently by model a with p = 0.7 and by model
    b with p = 0.6. The 95 % ratio interval must contain 0.7, and the paired interval of a - b
    must contain 0.1, in 90-99 % of the data sets (a binomial proportion over 200 trials has a
    standard error of 1.5 points at 95 %; an interval that is too narrow or too wide falls
    outside). 999 resamples each keep it under a second."""
    rng = np.random.default_rng(0)
    trials, images = 200, 40
    ratio_hits = paired_hits = 0
    for trial in range(trials):
        counts = rng.integers(1, 15, size=images)  # (N,)
        hits_a, hits_b = rng.binomial(counts, 0.7), rng.binomial(counts, 0.6)
        ratio = ratio_interval(hits_a, counts, resamples=999, seed=trial)
        paired = paired_difference_interval(
            hits_a, counts, hits_b, counts, resamples=999, seed=trial
        )
        ratio_hits += ratio.low <= 0.7 <= ratio.high
        paired_hits += paired.low <= 0.1 <= paired.high
    for name, hits in (("ratio", ratio_hits), ("paired difference", paired_hits)):
        assert 0.90 <= hits / trials <= 0.99, f"{name}: coverage {hits / trials:.3f}"
