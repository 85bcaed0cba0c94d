"""Mean per-joint error in original-image pixels, as pure functions: the mean Euclidean distance
between predicted and true joints, over the labelled joints (lower is better).

It is the 2D form of the mean per-joint position error of 3D pose (MPJPE, Ionescu et al.,
Human3.6M, TPAMI 2014, §5.1), without normaliser: unlike PDJ and PCKh it depends on the image
resolution, so compare it only within one dataset.

Conventions, as for PCK (:mod:`lightning_pose.metrics.functional.correct_keypoints`): a joint
is counted when it is labelled with a finite true position; a counted joint whose prediction is
not finite has an infinite error (the mean is then inf, never NaN). Sums are float64
``error_px (K,)`` and ``counts (K,)``, reduced across processes with ``sum``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pose.metrics.utilities import (
    ArrayLike,
    _check_prediction,
    _pooled,
    _tensor,
    keypoint_distances,
)

__all__ = ["_joint_error_update", "_joint_errors", "mean_joint_error"]


def _joint_error_update(
    pred_px: Tensor, target_px: Tensor, labelled: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-joint error and count sums of one batch.

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` (x, y) original-image pixels.
        labelled: ``(B, K)`` bool.
        returns: ``error_px (K,)`` summed distances in pixels and ``counts (K,)``, float64.
    """
    error, counted = _joint_errors(pred_px, target_px, labelled)
    return error.sum(dim=0), counted.sum(dim=0, dtype=torch.float64)


def _joint_errors(pred_px: Tensor, target_px: Tensor, labelled: Tensor) -> tuple[Tensor, Tensor]:
    """``error_px (B, K)`` float64 pixels, 0 where not counted, and ``counted (B, K)`` bool."""
    _check_prediction(pred_px, target_px, labelled)
    device = pred_px.device
    target = target_px.to(device, torch.float64)  # (B, K, 2)
    dist = keypoint_distances(pred_px.double(), target)  # (B, K)
    counted = labelled.to(device) & torch.isfinite(target).all(dim=-1)  # (B, K)
    dist = torch.nan_to_num(dist, nan=torch.inf)  # a non-finite prediction: infinitely far
    return torch.where(counted, dist, torch.zeros_like(dist)), counted


def mean_joint_error(pred_px: ArrayLike, target_px: ArrayLike, labelled: ArrayLike) -> Tensor:
    """Mean per-joint error: the mean distance in pixels between predicted and true joints,
    over the labelled ones with a finite true position (module docstring;
    a non-finite prediction makes it inf).

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` pixels; labelled: ``(B, K)`` bool.
        returns: ``()`` float64 pixels.

    Raises:
        ValueError: shapes or dtypes are off, or no joint is labelled.
    """
    error, counts = _joint_error_update(
        _tensor(pred_px, "pred_px"), _tensor(target_px, "target_px"), _tensor(labelled, "labelled")
    )
    return _pooled(error[None], counts, "joint (labelled)")[0]
