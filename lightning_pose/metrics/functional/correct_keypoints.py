"""PCK, PDJ and PCKh as pure functions: :func:`pck`, :func:`pdj`, :func:`pckh` score arrays of
keypoints from any model; :func:`_pck_update` and :func:`_pck_compute` are the torchmetrics-style
pair behind the metric classes (:mod:`lightning_pose.metrics.pck`).

A predicted joint is *detected* when its distance to the ground truth is within a fraction
``t`` of a per-sample normaliser:

    ||pred_px - target_px||_2 <= t * normaliser_px

DeepPose (Toshev & Szegedy, CVPR 2014, §5) calls this the Percent of Detected Joints (PDJ),
with the torso diameter as normaliser; Andriluka et al. (CVPR 2014, MPII) use the head segment
(PCKh). :func:`_pck_update` turns one batch into fixed-size sums, :func:`_pck_compute` turns
the (summed over batches and processes) sums into fractions. Sums are float64 so that they add
exactly across batches and ranks.

Conventions:
    * A joint is *counted* when it is labelled (its true position is annotated, occluded or
      not) and its sample's normaliser is finite and > 0.
      Samples whose normaliser cannot be measured (pass 0) drop out of numerator and
      denominator alike; they never produce NaN.
    * A counted joint whose prediction is not finite (NaN/inf) is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pose.metrics.utilities import (
    ArrayLike,
    _check_prediction,
    _group_ratios,
    _pooled,
    _tensor,
    keypoint_distances,
)

__all__ = ["_pck_compute", "_pck_curve", "_pck_hits", "_pck_update", "pck", "pckh", "pdj"]


def _pck_update(
    pred_px: Tensor,
    target_px: Tensor,
    labelled: Tensor,
    normaliser_px: Tensor,
    thresholds: Tensor,
) -> tuple[Tensor, Tensor]:
    """Per-joint hit and count sums of one batch (DeepPose §5 PDJ; PCK/PCKh).

    Shapes:
        pred_px: ``(B, K, 2)`` predicted (x, y) in original-image pixels.
        target_px: ``(B, K, 2)`` ground-truth (x, y) in pixels.
        labelled: ``(B, K)`` bool; unlabelled joints are not counted.
        normaliser_px: ``(B,)`` pixels (torso diameter, head segment, ...); samples with a
            normaliser that is <= 0 or not finite are not counted.
        thresholds: ``(T,)`` fractions of the normaliser.
        returns: ``hits (T, K)`` and ``counts (K,)``, float64, on the device of ``pred_px``.
    """
    hit, counted = _pck_hits(pred_px, target_px, labelled, normaliser_px, thresholds)
    return hit.sum(dim=1, dtype=torch.float64), counted.sum(dim=0, dtype=torch.float64)


def _pck_hits(
    pred_px: Tensor,
    target_px: Tensor,
    labelled: Tensor,
    normaliser_px: Tensor,
    thresholds: Tensor,
) -> tuple[Tensor, Tensor]:
    """Which joints are counted and which counted joints are hits (shapes as
    :func:`_pck_update`); returns ``hit (T, B, K)`` and ``counted (B, K)``, bool."""
    _check_prediction(pred_px, target_px, labelled)
    if normaliser_px.shape != pred_px.shape[:1]:
        raise ValueError(
            f"normaliser_px must have shape (B,) = ({pred_px.shape[0]},), "
            f"got {tuple(normaliser_px.shape)}"
        )
    if thresholds.ndim != 1:
        raise ValueError(f"thresholds must have shape (T,), got {tuple(thresholds.shape)}")

    device = pred_px.device
    dist = keypoint_distances(pred_px.double(), target_px.to(device, torch.float64))  # (B, K)
    norm = normaliser_px.to(device, torch.float64)  # (B,)
    thr = thresholds.to(device, torch.float64)  # (T,)

    sample_ok = torch.isfinite(norm) & (norm > 0)  # (B,)
    counted = labelled.to(device) & sample_ok[:, None]  # (B, K)
    radius = thr[:, None] * norm[None, :]  # (T, B)
    # A NaN distance compares False, and the radius is finite wherever a joint is counted, so
    # non-finite predictions are misses.
    close = dist[None] <= radius[:, :, None]  # (T, B, K)
    return close & counted[None], counted


def _format_threshold(t: float) -> str:
    return f"{t:g}"


def _pck_compute(
    hits: Tensor,
    counts: Tensor,
    thresholds: Tensor | Sequence[float],
    joint_names: Sequence[str],
    groups: dict[str, list[int]] | None,
    prefix: str,
) -> dict[str, Tensor]:
    """Fractions of detected joints, pooled over all joints and per group.

    Keys are ``f"{prefix}@{t:g}"`` (total hits / total counts over all joints) and
    ``f"{prefix}@{t:g}/{group}"`` (hits and counts pooled over the group's joints). With
    ``groups=None`` every joint is its own group, named by ``joint_names``. Keys with a count
    of 0 are left out, so the result never holds NaN.

    Shapes:
        hits: ``(T, K)`` summed hits.
        counts: ``(K,)`` summed counted joints.
        thresholds: ``(T,)`` fractions of the normaliser.
        returns: dict of scalar float64 tensors in [0, 1].
    """
    thr = [float(t) for t in thresholds]
    n_t, n_k = len(thr), len(joint_names)
    if hits.shape != (n_t, n_k):
        raise ValueError(f"hits must have shape (T, K) = ({n_t}, {n_k}), got {tuple(hits.shape)}")
    if counts.shape != (n_k,):
        raise ValueError(f"counts must have shape (K,) = ({n_k},), got {tuple(counts.shape)}")
    if groups is None:
        groups = {name: [k] for k, name in enumerate(joint_names)}
    out: dict[str, Tensor] = {}
    for suffix, fraction in _group_ratios(hits, counts, groups).items():  # (T,) each
        for i, t in enumerate(thr):
            out[f"{prefix}@{_format_threshold(t)}{suffix}"] = fraction[i]
    return out


def _pck_curve(hits: Tensor, counts: Tensor) -> Tensor:
    """Pooled fraction of detected joints per threshold, for PDJ-vs-distance curves.

    DeepPose Fig. 5 plots this against the normalised distance threshold. When no joint was
    counted (``counts.sum() == 0``) the curve is all zeros rather than NaN.

    Shapes:
        hits: ``(T, K)``; counts: ``(K,)``.
        returns: ``(T,)`` fractions in [0, 1].
    """
    if hits.ndim != 2 or counts.shape != hits.shape[1:]:
        raise ValueError(
            f"hits (T, K) and counts (K,) disagree: got {tuple(hits.shape)} "
            f"and {tuple(counts.shape)}"
        )
    total = counts.sum()
    pooled = hits.sum(dim=1)  # (T,)
    return torch.where(total > 0, pooled / total.clamp_min(1), torch.zeros_like(pooled))


def pck(
    pred_px: ArrayLike,
    target_px: ArrayLike,
    labelled: ArrayLike,
    normaliser_px: ArrayLike,
    thresholds: Sequence[float] = (0.1, 0.2),
) -> Tensor:
    """Percentage of Correct Keypoints: the fraction of counted joints with
    ``||pred_px - target_px|| <= t * normaliser_px``, pooled over joints and samples.

    A joint is counted when it is labelled and its sample's normaliser is finite and > 0; a
    counted joint with a non-finite prediction is a miss (module docstring).

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` (x, y) in pixels, float.
        labelled: ``(B, K)`` bool.
        normaliser_px: ``(B,)`` pixels.
        returns: ``(T,)`` float64 in [0, 1], one per threshold.

    Raises:
        ValueError: shapes or dtypes are off, or no joint is counted.
    """
    hits, counts = _pck_update(
        _tensor(pred_px, "pred_px"),
        _tensor(target_px, "target_px"),
        _tensor(labelled, "labelled"),
        _tensor(normaliser_px, "normaliser_px"),
        torch.tensor([float(t) for t in thresholds], dtype=torch.float64),
    )
    return _pooled(hits, counts, "joint (labelled, with a normaliser > 0)")


def pdj(
    pred_px: ArrayLike,
    target_px: ArrayLike,
    labelled: ArrayLike,
    torso_diameter_px: ArrayLike,
    thresholds: Sequence[float] = (0.05, 0.1, 0.2),
) -> Tensor:
    """Percent of Detected Joints (DeepPose, Toshev & Szegedy, CVPR 2014, §5): :func:`pck`
    at fractions of the torso diameter, the distance between the true left shoulder and right
    hip (``segment_lengths(target_px, labelled, skeleton.torso)``; 0 where it cannot be
    measured, and the sample is not counted).

    Shapes:
        as :func:`pck`; ``torso_diameter_px (B,)`` pixels; returns ``(T,)``.
    """
    return pck(pred_px, target_px, labelled, torso_diameter_px, thresholds)


def pckh(
    pred_px: ArrayLike,
    target_px: ArrayLike,
    labelled: ArrayLike,
    head_size_px: ArrayLike,
    thresholds: Sequence[float] = (0.5,),
) -> Tensor:
    """PCKh (Andriluka et al., CVPR 2014, MPII): :func:`pck` at fractions of the head size,
    the neck to head-top segment on LSP-style data
    (``segment_lengths(target_px, labelled, skeleton.head)``) or 0.6 x the head-box diagonal
    on MPII (``lightning_pose.data.mpii``). The standard report is PCKh@0.5.

    Shapes:
        as :func:`pck`; ``head_size_px (B,)`` pixels; returns ``(T,)``.
    """
    return pck(pred_px, target_px, labelled, head_size_px, thresholds)
