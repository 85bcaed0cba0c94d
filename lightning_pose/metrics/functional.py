"""The public functional metrics (:func:`pdj`, :func:`pckh`, :func:`pck`, :func:`pcp`,
:func:`mean_joint_error`: score arrays of keypoints from any model), and the pure functions
behind the PCK family of metric classes (PCK, PDJ, PCKh).

A predicted joint is *detected* when its distance to the ground truth is within a fraction
``t`` of a per-sample normaliser:

    ||pred_px - target_px||_2 <= t * normaliser_px

DeepPose (Toshev & Szegedy, CVPR 2014, §5) calls this the Percent of Detected Joints (PDJ),
with the torso diameter as normaliser; Andriluka et al. (CVPR 2014, MPII) use the head segment
(PCKh). The functions follow the torchmetrics split: :func:`_pck_update` turns one batch into
fixed-size sums, :func:`_pck_compute` turns the (summed over batches and processes) sums into
fractions. Sums are float64 so that they add exactly across batches and ranks.

Conventions:
    * A joint is *counted* when it is labelled (its true position is annotated, occluded or
      not) and its sample's normaliser is finite and > 0.
      Samples whose normaliser cannot be measured (pass 0) drop out of numerator and
      denominator alike; they never produce NaN.
    * A counted joint whose prediction is not finite (NaN/inf) is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "keypoint_distances",
    "mean_joint_error",
    "pck",
    "pckh",
    "pcp",
    "pdj",
    "_pck_update",
    "_pck_compute",
    "_pck_curve",
]


def keypoint_distances(pred_px: Tensor, target_px: Tensor) -> Tensor:
    """Euclidean distance between predicted and ground-truth keypoints.

    Shapes:
        pred_px: ``(..., K, 2)`` (x, y) in pixels.
        target_px: same shape as ``pred_px``, pixels.
        returns: ``(..., K)`` distances in pixels (NaN/inf where an input is not finite).
    """
    if pred_px.shape != target_px.shape:
        raise ValueError(
            f"target_px must have the shape of pred_px {tuple(pred_px.shape)}, "
            f"got {tuple(target_px.shape)}"
        )
    if pred_px.ndim < 2 or pred_px.shape[-1] != 2:
        raise ValueError(f"pred_px must have shape (..., K, 2), got {tuple(pred_px.shape)}")
    return torch.linalg.vector_norm(pred_px - target_px, dim=-1)


def _check_keypoints(name: str, x: Tensor) -> None:
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (B, K, 2) in pixels, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")


def _check_labelled(labelled: Tensor, bk: torch.Size) -> None:
    if labelled.shape != bk:
        raise ValueError(
            f"labelled must have shape (B, K) = {tuple(bk)}, got {tuple(labelled.shape)}"
        )
    if labelled.dtype != torch.bool:
        raise ValueError(f"labelled must be a bool tensor, got dtype {labelled.dtype}")


def _check_prediction(pred_px: Tensor, target_px: Tensor, labelled: Tensor) -> None:
    """Shapes and dtypes shared by every metric's update: (B, K, 2), (B, K, 2), (B, K) bool."""
    _check_keypoints("pred_px", pred_px)
    if target_px.shape != pred_px.shape:
        raise ValueError(
            f"target_px must have shape (B, K, 2) = {tuple(pred_px.shape)} like pred_px, "
            f"got {tuple(target_px.shape)}"
        )
    _check_keypoints("target_px", target_px)
    _check_labelled(labelled, pred_px.shape[:2])


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


def _sums_per_image(hit: Tensor, counted: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image sums of a metric's hits (or errors) and counts, for resampling images.

    Shapes:
        hit: ``(T, B, K)`` (K joints or limbs); counted: ``(B, K)``.
        returns: ``(B, T)`` and ``(B,)``, float64; summed over images they are the per-joint
        sums of the metric's update, summed over joints.
    """
    return hit.sum(dim=2, dtype=torch.float64).T, counted.sum(dim=1, dtype=torch.float64)


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


def _group_ratios(sums: Tensor, counts: Tensor, groups: dict[str, list[int]]) -> dict[str, Tensor]:
    """Per-column sums over all columns and over each group's, divided by the group's count.

    Keys are ``""`` (all columns pooled) and ``f"/{group}"``; a group whose count is 0 is left
    out, so no value is NaN.

    Shapes:
        sums: ``(T, K)``; counts: ``(K,)``; returns ``(T,)`` per key.
    """
    named: dict[str, tuple[Tensor, Tensor]] = {"": (sums.sum(dim=1), counts.sum())}  # (T,), ()
    for group, idx in groups.items():
        index = torch.as_tensor(idx, dtype=torch.long, device=sums.device)
        named[f"/{group}"] = (sums[:, index].sum(dim=1), counts[index].sum())
    return {
        suffix: group_sums / group_count
        for suffix, (group_sums, group_count) in named.items()
        if group_count.item() > 0  # one host sync per group, in compute only
    }


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


# --- public functional API -------------------------------------------------------------------

ArrayLike = Tensor | np.ndarray


def _tensor(x: ArrayLike, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}")


def _pooled(sums: Tensor, counts: Tensor, what: str) -> Tensor:
    """(T, K) sums and (K,) counts -> (T,) pooled over joints; raises when nothing counted."""
    total = counts.sum()
    if total.item() <= 0:
        raise ValueError(f"nothing to score: no {what} counted")
    return sums.sum(dim=1) / total


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


def pcp(
    pred_px: ArrayLike,
    target_px: ArrayLike,
    labelled: ArrayLike,
    endpoint_weights: ArrayLike,
    thresholds: Sequence[float] = (0.5,),
) -> Tensor:
    """Strict Percentage of Correct Parts (Ferrari et al., CVPR 2008, §6; DeepPose Table 1):
    the fraction of counted limbs whose two predicted end points both lie within
    ``t * true limb length`` of the true ones (:mod:`lightning_pose.metrics.pcp`).

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` pixels; labelled: ``(B, K)`` bool.
        endpoint_weights: ``(L, 2, K)``, each row averaging joints into a limb's start or end
            point (``Skeleton.limb_endpoint_weights()``).
        returns: ``(T,)`` float64 in [0, 1].

    Raises:
        ValueError: shapes or dtypes are off, or no limb is counted.
    """
    from lightning_pose.metrics.pcp import _pcp_update  # pcp.py imports this module

    hits, counts = _pcp_update(
        _tensor(pred_px, "pred_px"),
        _tensor(target_px, "target_px"),
        _tensor(labelled, "labelled"),
        _tensor(endpoint_weights, "endpoint_weights").double(),
        torch.tensor([float(t) for t in thresholds], dtype=torch.float64),
    )
    return _pooled(hits, counts, "limb (both ends labelled, length > 0)")


def mean_joint_error(pred_px: ArrayLike, target_px: ArrayLike, labelled: ArrayLike) -> Tensor:
    """Mean per-joint error: the mean distance in pixels between predicted and true joints,
    over the labelled ones with a finite true position (:mod:`lightning_pose.metrics.joint_error`;
    a non-finite prediction makes it inf).

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` pixels; labelled: ``(B, K)`` bool.
        returns: ``()`` float64 pixels.

    Raises:
        ValueError: shapes or dtypes are off, or no joint is labelled.
    """
    from lightning_pose.metrics.joint_error import _joint_error_update  # imports this module

    error, counts = _joint_error_update(
        _tensor(pred_px, "pred_px"), _tensor(target_px, "target_px"), _tensor(labelled, "labelled")
    )
    return _pooled(error[None], counts, "joint (labelled)")[0]
