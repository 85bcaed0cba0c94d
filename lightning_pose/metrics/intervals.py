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
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from lightning_pose.metrics.declaration import (
    DECLARATIONS_FILE,
    find_declaration,
    read_declarations,
)

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


@dataclass(frozen=True)
class PerImageScores:
    """One evaluation's per-image scores, as ``PerImageScoresWriter`` writes them
    (``per_image_<split>.csv``).

    Attributes:
        path: the file read.
        index: ``(N,)`` the samples' dataset indices, ascending.
        values: key (``"pdj@0.2"``) -> ``(N,)`` each sample's own value (NaN: counted nothing).
        counts: key -> ``(N,)`` what each sample counted for that key (``count/<metric>``).
        units: key -> its metric's declared unit, ``"fraction"`` or ``"px"``.
    """

    path: Path
    index: np.ndarray
    values: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    units: dict[str, str]

    def sums(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(sums, counts)`` of ``key`` per sample: what :func:`ratio_interval` takes
        (``sums = value x count``, 0 where the sample counted nothing).

        Raises:
            KeyError: the file has no column ``key`` (the message lists those it has).
        """
        if key not in self.values:
            raise KeyError(
                f"{self.path}: no per-image column {key!r}; it has {sorted(self.values)}"
            )
        counts = self.counts[key]
        return np.where(counts > 0, np.nan_to_num(self.values[key]) * counts, 0.0), counts


def read_per_image(path: str | Path) -> PerImageScores:
    """Read a ``per_image_<split>.csv``: ``index``, one column per metric key, and
    ``count/<metric>`` columns. Which metric a key belongs to, and its unit, come from the
    declarations the run recorded beside it (``metric_declarations.json``,
    :func:`~lightning_pose.metrics.declaration.read_declarations`); a key's count column is
    ``count/<metric>``, ``count/<metric>/<group>`` for a joint group's key
    ``<metric>@<t>/<group>``.

    Raises:
        ValueError: no declarations beside the file, the file has no ``index`` column, a key
            no declaration makes or without its count column, or a value that is not a number
            (the file and the column are named).
    """
    path = Path(path)
    declarations, _ = read_declarations(path.parent)
    if not declarations:
        raise ValueError(f"{path}: no {DECLARATIONS_FILE} beside it (MetricsTableWriter's)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) if rows else []
    if "index" not in header:
        raise ValueError(f"{path}: not a per-image scores file (no 'index' column): {header}")

    def column(name: str) -> np.ndarray:
        try:
            return np.array([float(r[name]) if r[name] != "" else np.nan for r in rows])
        except ValueError as error:
            raise ValueError(f"{path}: column {name!r}: {error}") from None

    values, counts, units = {}, {}, {}
    for key in header:
        if key == "index" or key.startswith("count/"):
            continue
        declaration = find_declaration(key, declarations, [""])
        if declaration is None:
            raise ValueError(f"{path}: column {key!r} is no declared metric's")
        group = key.removeprefix(key.split("/", 1)[0]).removeprefix("/")  # pdj@0.2/limb_joints
        count = f"count/{declaration.name}" + (f"/{group}" if group else "")
        if count not in header:
            raise ValueError(f"{path}: column {key!r} has no count column {count!r}")
        values[key], counts[key] = column(key), column(count)
        units[key] = declaration.unit
    return PerImageScores(path, column("index").astype(np.int64), values, counts, units)


def pool_seeds(runs: list[PerImageScores]) -> PerImageScores:
    """One setting trained with several seeds, scored on the same samples, as one run: each
    sample's sums and counts added over the seeds, so a key's value is the seeds' pooled
    ratio and :func:`comparison_table` resamples the samples with every seed's scores of a
    sample kept together. The interval then covers the images and the seeds' mean; the spread
    between seeds is not in it (report it beside).

    Raises:
        ValueError: no runs, or runs scored on different samples.
    """
    if not runs:
        raise ValueError("pool_seeds: no runs to pool")
    first = runs[0]
    for run in runs[1:]:
        if not np.array_equal(run.index, first.index):
            raise ValueError(
                f"pool_seeds: {first.path} and {run.path} were evaluated on different samples"
            )
    keys = [k for k in first.values if all(k in r.values for r in runs[1:])]
    values, counts = {}, {}
    for key in keys:
        sums = np.sum([r.sums(key)[0] for r in runs], axis=0)  # (N,)
        counts[key] = np.sum([r.counts[key] for r in runs], axis=0)  # (N,)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[key] = np.where(counts[key] > 0, sums / counts[key], np.nan)
    units = {k: first.units[k] for k in keys}
    return PerImageScores(first.path, first.index, values, counts, units)


def comparison_table(
    runs: dict[str, PerImageScores],
    keys: list[str],
    baseline: str | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> str:
    """Markdown: each run's value of each key with its bootstrap interval over images, then
    (with a ``baseline``) each other run's paired difference to it, called an effect only
    where its interval excludes 0.

    Args:
        runs: label -> scores, all evaluated on the same samples.
        keys: per-image keys to report, e.g. ``["pdj@0.2", "pckh@0.5"]``; fractions are shown
            in %, pixels (a mean error) as they are, as the metric declares.
        baseline: the label the others are compared with; None: no difference table.
        confidence, resamples: as :func:`ratio_interval`.

    Raises:
        ValueError: the runs were evaluated on different samples, or ``baseline`` is not a
            label of ``runs``.
        KeyError: a run has no column for a key.
    """
    labels = list(runs)
    first = runs[labels[0]]
    for label in labels[1:]:
        if not np.array_equal(runs[label].index, first.index):
            raise ValueError(
                f"runs {labels[0]!r} ({first.path}) and {label!r} ({runs[label].path}) were "
                "evaluated on different samples: a paired comparison needs the same ones"
            )
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not one of the runs {labels}")
    level = f"{100 * confidence:g} %"

    units = first.units

    def cell(interval: Interval, key: str, difference: bool = False) -> str:
        if units[key] != "fraction":
            e, lo, hi = interval.estimate, interval.low, interval.high
            sign = "+" if difference else ""
            return f"{e:{sign}.2f} [{lo:{sign}.2f}, {hi:{sign}.2f}]"
        return interval.percent_difference() if difference else interval.percent()

    lines = [
        f"Values with their {level} bootstrap interval over the {len(first.index)} evaluated "
        f"samples ({resamples} resamples); fractions in %, pixel errors in px.",
        "",
        "| run | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label in labels:
        cells = []
        for key in keys:
            sums, counts = runs[label].sums(key)
            fraction = units[key] == "fraction"
            cells.append(
                cell(ratio_interval(sums, counts, confidence, resamples, fraction=fraction), key)
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if baseline is None or len(labels) < 2:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Paired differences to {baseline} (same samples resampled jointly; {level} interval; "
        "**effect** where it excludes 0, else noise):",
        "",
        "| run − " + baseline + " | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label in labels:
        if label == baseline:
            continue
        cells = []
        for key in keys:
            fraction = units[key] == "fraction"
            interval = paired_difference_interval(
                *runs[label].sums(key),
                *runs[baseline].sums(key),
                confidence,
                resamples,
                fraction=fraction,
            )
            verdict = "**effect**" if interval.excludes_zero else "noise"
            cells.append(f"{cell(interval, key, difference=True)} {verdict}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
