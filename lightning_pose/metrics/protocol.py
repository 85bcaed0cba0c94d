"""The evaluation protocol, configured once for every model: which thresholds PDJ, PCKh, PCP and
bbox-PCK report and the PDJ curve's grid; and the metrics of one stage built from it.

In the CLI it is the top-level ``evaluation:`` group, linked to ``model.init_args.evaluation``
(``lightning_pose.cli``), so no model signature or model YAML repeats a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import Metric, SumMetric

from lightning_pose.metrics.oks import OKSAveragePrecision
from lightning_pose.metrics.pck import PCK, PDJ, PCKh
from lightning_pose.metrics.pcp import PCP
from lightning_pose.skeleton import Skeleton

Batch = dict[str, Tensor]


class EvaluationProtocol:
    """Thresholds of the reported metrics.

    Args:
        pdj_thresholds: PDJ thresholds, fractions of the torso diameter (DeepPose §5).
        pckh_thresholds: PCKh thresholds, fractions of the head segment (Andriluka et al.
            2014; MPII reports 0.5).
        pcp_thresholds: PCP thresholds, fractions of the true limb length (DeepPose Table 1
            uses 0.5).
        curve_max, curve_points: the PDJ-versus-distance curve (DeepPose Fig. 5) is sampled at
            ``curve_points`` thresholds evenly spaced in [0, curve_max].
        pck_bbox_thresholds: bbox-PCK thresholds, fractions of ``max(w, h)`` of the annotated
            person box (mmpose's ``PCKAccuracy(norm_item="bbox")``; mmpose reports 0.05 on
            animal datasets, 0.2 is common too); reported where the dataset has person boxes.

    Raises:
        ValueError: an empty threshold list or fewer than 2 curve points.
    """

    def __init__(
        self,
        pdj_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        pckh_thresholds: Sequence[float] = (0.5,),
        pcp_thresholds: Sequence[float] = (0.5,),
        curve_max: float = 0.5,
        curve_points: int = 51,
        pck_bbox_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
    ) -> None:
        for name, values in (
            ("pdj_thresholds", pdj_thresholds),
            ("pckh_thresholds", pckh_thresholds),
            ("pcp_thresholds", pcp_thresholds),
            ("pck_bbox_thresholds", pck_bbox_thresholds),
        ):
            if len(values) == 0:
                raise ValueError(f"evaluation.{name} must list at least one threshold")
        if curve_points < 2 or curve_max <= 0:
            raise ValueError(
                "evaluation.curve_points must be >= 2 and evaluation.curve_max > 0, got "
                f"{curve_points} and {curve_max}"
            )
        self.pdj_thresholds = tuple(float(t) for t in pdj_thresholds)
        self.pckh_thresholds = tuple(float(t) for t in pckh_thresholds)
        self.pcp_thresholds = tuple(float(t) for t in pcp_thresholds)
        self.curve_max = float(curve_max)
        self.curve_points = int(curve_points)
        self.pck_bbox_thresholds = tuple(float(t) for t in pck_bbox_thresholds)

    @property
    def curve_thresholds(self) -> tuple[float, ...]:
        grid = np.linspace(0.0, self.curve_max, self.curve_points)
        return tuple(np.round(grid, 6).tolist())

    def to_dict(self) -> dict[str, list[float] | float | int]:
        """Plain types (for hyperparameters and checkpoints)."""
        return {
            "pdj_thresholds": list(self.pdj_thresholds),
            "pckh_thresholds": list(self.pckh_thresholds),
            "pcp_thresholds": list(self.pcp_thresholds),
            "curve_max": self.curve_max,
            "curve_points": self.curve_points,
            "pck_bbox_thresholds": list(self.pck_bbox_thresholds),
        }


class StageMetrics(nn.Module):
    """PDJ, PCKh, PCP, bbox-PCK, OKS AP and the PDJ curve of one stage's estimates, in
    original-image pixels.

    Counted: labelled joints (occluded ones included) of samples whose normaliser can be
    measured (PDJ: both torso joints labelled; PCKh: a head size; bbox-PCK: a person box);
    for PCP, limbs whose end joints are all labelled. A metric that counted nothing is absent
    from :meth:`compute` (PDJ on a skeleton without a torso, PCKh without a head, bbox-PCK
    without person boxes). OKS AP (:class:`~lightning_pose.metrics.oks.OKSAveragePrecision`)
    where the skeleton has ``oks_sigmas``, over the instances with an ``area_px2``.

    Shapes:
        update: pred_px (B, K, 2) pixels; batch with ``keypoints_px (B, K, 2)``,
        ``labelled (B, K)``, ``torso_diameter_px (B,)``, ``head_size_px (B,)`` and, where
        present, ``bbox_size_px (B,)`` (bbox-PCK) and ``visible (B, K)``, ``area_px2 (B,)``,
        ``image_id (B,)``, ``index (B,)`` (OKS AP).
    """

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        super().__init__()
        joints, groups = skeleton.joints, skeleton.groups()
        self.pdj = PDJ(joints, protocol.pdj_thresholds, groups)
        self.pckh = PCKh(joints, protocol.pckh_thresholds, groups)
        # PCP needs limbs; a skeleton without any (a COCO category without ``skeleton`` pairs)
        # has no PCP.
        self.pcp = (
            PCP(
                skeleton.limb_names,
                torch.from_numpy(skeleton.limb_endpoint_weights()),
                protocol.pcp_thresholds,
                skeleton.limb_groups(),
            )
            if skeleton.limbs
            else None
        )
        self.curve = PDJ(joints, protocol.curve_thresholds, groups=None, prefix="curve")
        self.pck_bbox = PCK(joints, protocol.pck_bbox_thresholds, groups, prefix="pck_bbox")
        sigmas = skeleton.oks_sigmas
        self.oks = None if sigmas is None else OKSAveragePrecision(sigmas)
        self.images = SumMetric()

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        target, labelled = batch["keypoints_px"], batch["labelled"]
        self.images.update(float(labelled.shape[0]))
        self.pdj.update(pred_px, target, labelled, batch["torso_diameter_px"])
        self.pckh.update(pred_px, target, labelled, batch["head_size_px"])
        if self.pcp is not None:
            self.pcp.update(pred_px, target, labelled)
        self.curve.update(pred_px, target, labelled, batch["torso_diameter_px"])
        if "bbox_size_px" in batch:
            self.pck_bbox.update(pred_px, target, labelled, batch["bbox_size_px"])
        if self.oks is not None and "area_px2" in batch:
            self.oks.update(
                pred_px,
                target,
                labelled,
                batch["visible"],
                batch["area_px2"],
                batch["image_id"],
                batch["index"],
            )

    def compute(self, groups: bool = True) -> dict[str, Tensor]:
        """``pdj@t``, ``pckh@t``, ``pcp@t``, ``pck_bbox@t`` (pooled), and with ``groups`` also
        per joint or limb group (``pdj@0.2/wrist``, ``pcp@0.5/upper_arm``); ``oks_ap``,
        ``oks_ap50``, ``oks_ap75``, ``oks_ar`` where scored. A collective under DDP: call it on
        every process."""
        out: dict[str, Tensor] = {}
        for metric in (self.pdj, self.pckh, self.pcp, self.pck_bbox):
            if metric is None:
                continue
            out |= {k: v for k, v in metric.compute().items() if groups or "/" not in k}
        if self.oks is not None:
            out |= self.oks.compute()
        return out

    def counts(self) -> dict[str, Tensor]:
        """What each metric counted, summed over processes: ``count/images`` evaluated,
        ``count/pdj`` and ``count/pckh`` joints, ``count/pcp`` limbs, and
        ``count/pdj/limb_joints``, the joints of ``pdj@t/limb_joints`` (where the skeleton has
        limb joints). A collective under DDP."""
        out = {
            "count/images": self.images.compute(),
            "count/pdj": _synced_total(self.pdj),
            "count/pckh": _synced_total(self.pckh),
            "count/pcp": torch.zeros(()) if self.pcp is None else _synced_total(self.pcp),
            "count/pck_bbox": _synced_total(self.pck_bbox),
        }
        limb_joints = (self.pdj.groups or {}).get("limb_joints")
        if limb_joints:
            out["count/pdj/limb_joints"] = _synced_total(self.pdj, limb_joints)
        return out

    def pdj_curve(self) -> Tensor:
        """Pooled PDJ at every curve threshold, (T,) in [0, 1]; a collective under DDP."""
        return self.curve.curve()[1]


def _synced_total(metric: Metric, joints: list[int] | None = None) -> Tensor:
    """``metric.counts.sum()`` (over ``joints``; None: all) over every process (its states
    synced the way ``compute`` does)."""
    with metric.sync_context(
        dist_sync_fn=metric.dist_sync_fn,
        process_group=metric.process_group,
        should_sync=metric._to_sync,
        should_unsync=metric._should_unsync,
    ):
        counts = metric.counts if joints is None else metric.counts[joints]
        return counts.sum().clone()
