"""Mean per-joint error in original-image pixels: the mean Euclidean distance between predicted
and true joints, over the labelled joints (lower is better).

It is the 2D form of the mean per-joint position error of 3D pose (MPJPE, Ionescu et al.,
Human3.6M, TPAMI 2014, §5.1), without normaliser: unlike PDJ and PCKh it depends on the image
resolution, so compare it only within one dataset.

Conventions, as for PCK (:mod:`lightning_pose.metrics.functional`): a joint is counted when it
is labelled with a finite true position; a counted joint whose prediction is not finite has an
infinite error (the mean is then inf, never NaN). Sums are float64 ``error_px (K,)`` and
``counts (K,)``, reduced across processes with ``sum``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lightning_pose.metrics.declaration import Batch, MetricDeclaration, StageMetric
from lightning_pose.metrics.functional import _check_prediction, _group_ratios, keypoint_distances
from lightning_pose.metrics.stage import synced_total

if TYPE_CHECKING:
    from lightning_pose.data.skeleton import Skeleton
    from lightning_pose.metrics.protocol import EvaluationProtocol

__all__ = ["MeanJointError", "_joint_error_update"]


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


class MeanJointError(StageMetric):
    """Mean per-joint error in pixels, ``mean_error_px``, pooled and per joint group.

    Args:
        skeleton: the joints and their groups.
        protocol: unused (no threshold); the signature every stage metric has.

    Shapes:
        update: pred_px (B, K, 2) pixels; batch with ``keypoints_px (B, K, 2)`` and
            ``labelled (B, K)``.
        compute(): ``mean_error_px`` and ``mean_error_px/<group>``, () float64 pixels; keys
            with no counted joint are left out.
    """

    higher_is_better = False

    error_px: Tensor
    counts: Tensor

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        super().__init__()
        self.declaration = self.declare(protocol)
        self.groups = skeleton.groups()
        k = skeleton.num_joints
        self.add_state("error_px", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            "mean_error_px",
            "mean joint error",
            higher_is_better=False,
            unit="px",
            counts="labelled joints",
            groups="joint",
        )

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        error, counts = _joint_error_update(pred_px, batch["keypoints_px"], batch["labelled"])
        self.error_px += error.to(self.error_px.device)
        self.counts += counts.to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        ratios = _group_ratios(self.error_px[None], self.counts, self.groups)  # suffix -> (1,)
        return {f"{self.declaration.name}{suffix}": r[0] for suffix, r in ratios.items()}

    def counted(self) -> dict[str, Tensor]:
        return {f"count/{self.declaration.name}": synced_total(self)}

    def per_image(self, pred_px: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        error, counted = _joint_errors(pred_px, batch["keypoints_px"], batch["labelled"])  # (B, K)
        return {self.declaration.name: error.sum(dim=1)}, counted.sum(dim=1, dtype=torch.float64)
