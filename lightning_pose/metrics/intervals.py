"""Bootstrap confidence intervals over evaluation images: how much of a metric, and of a
difference between two models, is noise.

Every PCK-family metric here (PDJ, PCK, PCKh, PCP, bbox-PCK) is a ratio of sums over images:
``sum_i hits_i / sum_i counts_i``, where image ``i`` contributes ``counts_i`` counted joints
(or limbs) of which ``hits_i`` were detected. The images, not the joints, are the independent
draws (the joints of one person are correlated), so the bootstrap resamples images with
replacement and recomputes the ratio (a cluster bootstrap; Efron & Tibshirani 1993, §6 and
§14.3 for BCa). Two models evaluated on the same images are compared by resampling the images
*jointly* (a paired bootstrap): the interval of the difference accounts for the images being
shared, which is far narrower than two independent intervals suggest.

A difference is called an *effect* only where its interval excludes 0
(:attr:`Interval.excludes_zero`). The computation is ``scipy.stats.bootstrap`` (BCa, falling
back to the percentile interval where BCa is undefined, e.g. every resample equal).

Only arrays come in: reading a run's per-image scores and writing comparison tables is
:mod:`lightning_pose.reports.tables`'s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A statistic and its bootstrap confidence interval, as fractions (not percent).

    Attributes:
        estimate: the statistic on the images themselves.
        low, high: the interval's ends.
        confidence: its level (0.95 for a 95 % interval).
        images: how many images were resampled.
        method: ``"BCa"`` or ``"percentile"``.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    images: int
    method: str

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0 (for a difference: an
        effect at this confidence)."""
        return self.low > 0 or self.high < 0

    def percent(self, digits: int = 1) -> str:
        """``"36.1 [34.0, 38.2]"``: the estimate and interval in percent."""
        e, lo, hi = (round(100 * v, digits) for v in (self.estimate, self.low, self.high))
        return f"{e:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    def percent_difference(self, digits: int = 1) -> str:
        """``"+2.1 [+0.4, +3.9]"``: a difference in percentage points, signed."""
        e, lo, hi = (round(100 * v, digits) for v in (self.estimate, self.low, self.high))
        return f"{e:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _check(
    name: str, hits: np.ndarray, counts: np.ndarray, fraction: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    hits = np.asarray(hits, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if hits.ndim != 1 or hits.shape != counts.shape:
        raise ValueError(
            f"{name}: hits and counts must be 1-D arrays of one value per image with the same "
            f"length, got shapes {hits.shape} and {counts.shape}"
        )
    if hits.size < 2:
        raise ValueError(f"{name}: a bootstrap needs at least 2 images, got {hits.size}")
    if not (np.all(np.isfinite(hits)) and np.all(np.isfinite(counts))):
        raise ValueError(f"{name}: hits and counts must be finite")
    if np.any(counts < 0) or np.any(hits < 0) or (fraction and np.any(hits > counts)):
        bound = "0 <= hits <= counts" if fraction else "sums >= 0 and counts >= 0"
        raise ValueError(f"{name}: each image needs {bound}")
    if counts.sum() <= 0:
        raise ValueError(f"{name}: no image counts any joint (sum of counts is 0)")
    return hits, counts


def _ratio(hits: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    # a resample that drew only images without counted joints has no value: NaN, dropped by
    # scipy (a 0/0 only happens where most images count nothing)
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits.sum(axis=axis) / counts.sum(axis=axis)


def _bootstrap(
    data: tuple[np.ndarray, ...], statistic, confidence: float, resamples: int, seed: int
) -> Interval:
    estimate = float(statistic(*data))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # BCa's degenerate case: the percentile is tried next
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(
                data,
                statistic,
                paired=True,
                vectorized=True,
                n_resamples=resamples,
                confidence_level=confidence,
                method=method,
                random_state=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Interval(estimate, float(low), float(high), confidence, len(data[0]), method)
    # every resample gave the same value (e.g. all images correct): the interval is a point
    return Interval(estimate, estimate, estimate, confidence, len(data[0]), "degenerate")


def ratio_interval(
    hits: np.ndarray,
    counts: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    fraction: bool = True,
) -> Interval:
    """Bootstrap interval of ``sum(hits) / sum(counts)`` over images.

    Args:
        hits: ``(N,)`` detected joints (or limbs) per image.
        counts: ``(N,)`` counted joints (or limbs) per image (labelled, with a normaliser).
        confidence: the interval's level.
        resamples: bootstrap resamples.
        seed: the resampling generator's seed (the interval is reproducible).
        fraction: ``hits`` are detections (``<= counts``); False for other per-image sums,
            e.g. summed pixel errors for a mean error.

    Raises:
        ValueError: shapes differ or are not 1-D, fewer than 2 images, a non-finite value,
            ``hits`` outside ``[0, counts]``, or nothing counted.
    """
    data = _check("ratio_interval", hits, counts, fraction)
    return _bootstrap(data, _ratio, confidence, resamples, seed)


def paired_difference_interval(
    hits_a: np.ndarray,
    counts_a: np.ndarray,
    hits_b: np.ndarray,
    counts_b: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    fraction: bool = True,
) -> Interval:
    """Paired bootstrap interval of ``ratio(a) - ratio(b)`` for two models scored on the same
    images (image ``i`` of ``a`` is image ``i`` of ``b``): the images are resampled jointly.

    Args:
        hits_a, counts_a: ``(N,)`` per-image hits and counts of model a.
        hits_b, counts_b: ``(N,)`` the same of model b, on the same images in the same order.
        confidence, resamples, seed, fraction: as :func:`ratio_interval`.

    Raises:
        ValueError: as :func:`ratio_interval`, or the two models were scored on different
            numbers of images.
    """
    a = _check("paired_difference_interval (a)", hits_a, counts_a, fraction)
    b = _check("paired_difference_interval (b)", hits_b, counts_b, fraction)
    if a[0].size != b[0].size:
        raise ValueError(
            "paired_difference_interval: both models must be scored on the same images, got "
            f"{a[0].size} and {b[0].size}"
        )

    def difference(ha, ca, hb, cb, axis=-1):
        return _ratio(ha, ca, axis) - _ratio(hb, cb, axis)

    return _bootstrap((*a, *b), difference, confidence, resamples, seed)
