"""The protocol's metrics as :class:`~lightning_pose.metrics.declaration.StageMetric` s: PDJ,
PCKh, bbox-PCK, PCP and OKS AP, each a metric class of its module built from the skeleton and
the protocol, with its declaration, its counts and its per-image sums.

The metric classes (:class:`~lightning_pose.metrics.pck.PCK`,
:class:`~lightning_pose.metrics.pcp.PCP`, :class:`~lightning_pose.metrics.oks.OKSAveragePrecision`)
do the arithmetic, keep the states and take the batch (``update(pred_px, batch)``); the classes
here add what a report needs to know about them. The word *stage* in their names is the
model's: one set of them scores each stage's estimates (``StageMetrics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lightning_pose.data.dataset import Batch
from lightning_pose.metrics.declaration import MetricDeclaration, StageMetric
from lightning_pose.metrics.functional.correct_keypoints import _pck_hits
from lightning_pose.metrics.functional.correct_parts import _pcp_hits
from lightning_pose.metrics.functional.oks import OKS_KEYS
from lightning_pose.metrics.oks import OKSAveragePrecision
from lightning_pose.metrics.pck import PCK
from lightning_pose.metrics.pcp import PCP
from lightning_pose.metrics.sync import synced_total
from lightning_pose.metrics.utilities import _sums_per_image

if TYPE_CHECKING:
    from lightning_pose.data.skeleton import Skeleton
    from lightning_pose.metrics.protocol import EvaluationProtocol

__all__ = ["StageBboxPCK", "StageOKS", "StagePCKh", "StagePCP", "StagePDJ"]


class _StagePCK(PCK, StageMetric):
    """PCK at fractions of the normaliser in ``batch[normaliser_key]`` (B,) pixels, over the
    skeleton's joints, reported per joint group."""

    normaliser_key: ClassVar[str]
    # joint groups whose per-image scores are written beside the pooled ones
    per_image_groups: ClassVar[tuple[str, ...]] = ()

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        declaration = self.declare(protocol)
        super().__init__(
            skeleton.joints,
            self.normaliser_key,
            declaration.thresholds,
            skeleton.groups(),
            declaration.name,
        )
        self.declaration = declaration

    def counted(self) -> dict[str, Tensor]:
        return {f"count/{self.declaration.name}": synced_total(self)}

    def per_image(self, pred_px: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """Hits and counted joints per image; none counted in a batch without the
        normaliser."""
        if self.normaliser_key not in batch:
            zeros = pred_px.new_zeros(pred_px.shape[0], dtype=torch.float64)  # (B,)
            return {key: zeros for key in self.declaration.keys()}, zeros
        hit, counted = _pck_hits(
            pred_px,
            batch["keypoints_px"],
            batch["labelled"],
            batch[self.normaliser_key],
            self._threshold_tensor(),
        )  # (T, B, K), (B, K)
        hits, counts = _sums_per_image(hit, counted)  # (B, T), (B,)
        out = dict(zip(self.declaration.keys(), hits.T, strict=True))
        for group in self.per_image_groups:  # e.g. pdj@0.2/limb_joints, count/pdj/limb_joints
            joints = (self.groups or {}).get(group)
            if joints:
                group_hits, group_counts = _sums_per_image(hit[..., joints], counted[:, joints])
                for key, column in zip(self.declaration.keys(), group_hits.T, strict=True):
                    out[f"{key}/{group}"] = column
                out[f"count/{self.declaration.name}/{group}"] = group_counts
        return out, counts


class StagePDJ(_StagePCK):
    """PDJ at fractions of the torso diameter (DeepPose §5); also counts the joints of the
    ``limb_joints`` group (``count/pdj/limb_joints``) where the skeleton has one."""

    normaliser_key = "torso_diameter_px"
    per_image_groups = ("limb_joints",)  # PCK@0.2 on the limb joints: docs/RESULTS.md's headline

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            "pdj",
            "PDJ",
            higher_is_better=True,
            thresholds=protocol.pdj_thresholds,
            counts="labelled joints (images with both torso joints labelled)",
            groups="joint",
        )

    def counted(self) -> dict[str, Tensor]:
        out = super().counted()
        limb_joints = (self.groups or {}).get("limb_joints")
        if limb_joints:
            out["count/pdj/limb_joints"] = synced_total(self, limb_joints)
        return out


class StagePCKh(_StagePCK):
    """PCKh at fractions of the head segment (Andriluka et al., CVPR 2014)."""

    normaliser_key = "head_size_px"

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            "pckh",
            "PCKh",
            higher_is_better=True,
            thresholds=protocol.pckh_thresholds,
            counts="joints (head segment labelled)",
            groups="joint",
        )


class StageBboxPCK(_StagePCK):
    """PCK at fractions of ``max(w, h)`` of the person box (mmpose's ``PCKAccuracy``,
    ``norm_item="bbox"``), where the batch has ``bbox_size_px``. Its count is logged
    (``count/pck_bbox``) but not listed in the report's "Counted" line."""

    normaliser_key = "bbox_size_px"

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            "pck_bbox",
            "bbox-PCK",
            higher_is_better=True,
            thresholds=protocol.pck_bbox_thresholds,
            groups="joint",
        )


class StagePCP(PCP, StageMetric):
    """Strict PCP at fractions of the true limb length (DeepPose Table 1), per limb group;
    built where the skeleton has limbs."""

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        declaration = self.declare(protocol)
        super().__init__(
            skeleton.limb_names,
            torch.from_numpy(skeleton.limb_endpoint_weights()),
            declaration.thresholds,
            skeleton.limb_groups(),
            declaration.name,
        )
        self.declaration = declaration

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            "pcp",
            "PCP",
            higher_is_better=True,
            thresholds=protocol.pcp_thresholds,
            counts="limbs (both ends labelled)",
            groups="limb",
        )

    @classmethod
    def applies_to(cls, skeleton: Skeleton) -> bool:
        return bool(skeleton.limbs)

    def counted(self) -> dict[str, Tensor]:
        return {"count/pcp": synced_total(self)}

    def per_image(self, pred_px: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """Hits and counted limbs per image."""
        thresholds = torch.tensor(self.thresholds, dtype=torch.float64, device=self.hits.device)
        hit = _pcp_hits(
            pred_px, batch["keypoints_px"], batch["labelled"], self.endpoint_weights, thresholds
        )
        hits, counts = _sums_per_image(*hit)  # (B, T), (B,)
        return dict(zip(self.declaration.keys(), hits.T, strict=True)), counts


class StageOKS(OKSAveragePrecision, StageMetric):
    """COCO OKS AP, AP50, AP75 and AR over the instances with an ``area_px2``; built where the
    skeleton has ``oks_sigmas``. No count is logged."""

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        super().__init__(skeleton.oks_sigmas or ())
        self.declaration = self.declare(protocol)

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        return MetricDeclaration(
            OKS_KEYS[0], "OKS AP", higher_is_better=True, logs_count=False, extra_keys=OKS_KEYS[1:]
        )

    @classmethod
    def applies_to(cls, skeleton: Skeleton) -> bool:
        return skeleton.oks_sigmas is not None
