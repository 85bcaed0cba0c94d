"""OKS AP, COCO keypoint average precision, as a torchmetrics ``Metric``; what is scored and how
is :mod:`lightning_pose.metrics.functional.oks`'s (pycocotools' ``COCOeval`` itself)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_pose.data.dataset import Batch
from lightning_pose.metrics.functional.oks import oks_average_precision

__all__ = ["OKSAveragePrecision"]


class OKSAveragePrecision(Metric):
    """COCO keypoint AP/AP50/AP75/AR over every instance seen (see the module docstring).

    OKS AP ranks all instances together, so it cannot be a sum of per-batch values: its
    states are the instances themselves (concatenated across processes under DDP, where the
    evaluation samplers give each instance to exactly one process), sorted by dataset index
    before scoring so that the numbers equal a one-process run.

    Args:
        sigmas: K per-keypoint OKS constants (``Skeleton.oks_sigmas``).

    Shapes:
        update: ``pred_px (B, K, 2)`` pixels; ``batch`` with ``keypoints_px (B, K, 2)``
            pixels, ``labelled``, ``visible (B, K)`` bool, ``area_px2 (B,)`` pixels²
            (instances with area 0 are skipped: no scale), ``image_id`` and ``index (B,)``
            int. A batch without ``area_px2`` adds nothing.
        compute(): ``oks_ap``, ``oks_ap50``, ``oks_ap75``, ``oks_ar``; empty when no instance
            had an area.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, sigmas: Sequence[float]) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        for name in ("pred", "target", "labelled", "visible", "area", "image_id", "index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        """Add the batch's instances that have an area; see the class docstring."""
        if "area_px2" not in batch:
            return
        keep = batch["area_px2"] > 0  # (B,)
        self.pred.append(pred_px[keep].double())
        self.target.append(batch["keypoints_px"][keep].double())
        self.labelled.append(batch["labelled"][keep])
        self.visible.append(batch["visible"][keep])
        self.area.append(batch["area_px2"][keep].double())
        self.image_id.append(batch["image_id"][keep].long())
        self.index.append(batch["index"][keep].long())

    def compute(self) -> dict[str, Tensor]:
        if isinstance(self.index, list) and not self.index:  # no update (synced: one tensor)
            return {}
        index = dim_zero_cat(self.index)
        order = torch.argsort(index)  # dataset order, whatever the process shards were
        return oks_average_precision(
            dim_zero_cat(self.pred)[order],
            dim_zero_cat(self.target)[order],
            dim_zero_cat(self.labelled)[order].bool(),
            dim_zero_cat(self.visible)[order].bool(),
            dim_zero_cat(self.area)[order],
            dim_zero_cat(self.image_id)[order],
            self.sigmas,
        )
