"""Mean per-joint error in original-image pixels, ``mean_error_px``, as a declared metric
(:class:`~lightning_pose.metrics.declaration.StageMetric`; lower is better). The definition and
its conventions are :mod:`lightning_pose.metrics.functional.joint_error`'s: the 2D form of the
mean per-joint position error of 3D pose (MPJPE, Ionescu et al., Human3.6M, TPAMI 2014, §5.1),
without normaliser, so compare it only within one dataset. The states are float64 sums
``error_px (K,)`` and ``counts (K,)``, reduced across processes with ``sum``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lightning_pose.data.dataset import Batch
from lightning_pose.metrics.declaration import MetricDeclaration, StageMetric
from lightning_pose.metrics.functional.joint_error import _joint_error_update, _joint_errors
from lightning_pose.metrics.sync import synced_total
from lightning_pose.metrics.utilities import _group_ratios

if TYPE_CHECKING:
    from lightning_pose.data.skeleton import Skeleton
    from lightning_pose.metrics.protocol import EvaluationProtocol

__all__ = ["MeanJointError"]


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
