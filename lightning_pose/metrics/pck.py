"""PCK, PDJ and PCKh as torchmetrics ``Metric`` classes.

Each class keeps two fixed-size float64 sum states, ``hits (T, K)`` and ``counts (K,)``,
reduced across processes with ``sum``; the arithmetic is
:mod:`lightning_pose.metrics.functional.correct_keypoints`'s. Every metric class of the package
is updated the same way, ``update(pred_px, batch)``: the predictions in original-image pixels
and the batch (:data:`lightning_pose.data.dataset.Batch`), from which a class reads the ground
truth and its normaliser (``batch[normaliser_key]``, computed by the dataset from the ground
truth, see :func:`~lightning_pose.codecs.segments.segment_lengths`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_pose.data.dataset import Batch
from lightning_pose.metrics.functional.correct_keypoints import (
    _pck_compute,
    _pck_curve,
    _pck_update,
)
from lightning_pose.metrics.sync import synced
from lightning_pose.metrics.utilities import _check_names

__all__ = ["PCK", "PDJ", "PCKh"]


class PCK(Metric):
    """Percentage of Correct Keypoints at fractions of a per-sample normaliser.

    A labelled joint is correct when ``||pred_px - target_px|| <= t * normaliser_px``
    (DeepPose §5; Andriluka et al., CVPR 2014). Samples with ``normaliser_px <= 0`` are
    excluded, and non-finite predictions count as misses.

    Args:
        joint_names: name of each of the K joints, in annotation order.
        normaliser_key: the batch entry holding each sample's normaliser in pixels
            (``"torso_diameter_px"``, ``"head_size_px"``, ``"bbox_size_px"``).
        thresholds: fractions ``t`` of the normaliser, T of them.
        groups: joint groups to report, e.g. ``{"wrist": [6, 11]}`` (``Skeleton.groups()``);
            None reports every joint on its own.
        prefix: first part of every key in :meth:`compute`.

    Shapes:
        update: ``pred_px (B, K, 2)`` predicted (x, y) in original-image pixels; ``batch``
            with ``keypoints_px (B, K, 2)`` ground truth in pixels, ``labelled (B, K)`` bool
            and ``batch[normaliser_key] (B,)`` pixels. A batch without ``normaliser_key``
            adds nothing (bbox-PCK on data without person boxes).
        compute(): dict of scalar tensors, ``f"{prefix}@{t:g}"`` (all joints pooled) and
            ``f"{prefix}@{t:g}/{group}"``; keys with no counted joint are left out.
        curve(): ``(thresholds (T,), fraction (T,))``.

    Raises:
        ValueError: no or repeated joint names, no threshold, a threshold < 0, not finite or
            repeated, a group index out of range; in ``update``, inputs of the wrong shape or
            dtype.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    hits: Tensor
    counts: Tensor

    def __init__(
        self,
        joint_names: Sequence[str],
        normaliser_key: str,
        thresholds: Sequence[float] = (0.1, 0.2),
        groups: dict[str, list[int]] | None = None,
        prefix: str = "pck",
    ) -> None:
        super().__init__()
        self.joint_names = tuple(joint_names)
        self.normaliser_key = normaliser_key
        self.thresholds = tuple(float(t) for t in thresholds)
        self.groups = None if groups is None else {g: list(idx) for g, idx in groups.items()}
        self.prefix = prefix
        _check_names(self.joint_names, self.thresholds, self.groups)

        n_t, n_k = len(self.thresholds), len(self.joint_names)
        self.add_state(
            "hits", default=torch.zeros(n_t, n_k, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "counts", default=torch.zeros(n_k, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        """Add one batch; see the class docstring for shapes."""
        if self.normaliser_key not in batch:
            return
        if pred_px.ndim == 3 and pred_px.shape[1] != len(self.joint_names):
            raise ValueError(
                f"pred_px must have shape (B, K={len(self.joint_names)}, 2) to match "
                f"joint_names, got {tuple(pred_px.shape)}"
            )
        hits, counts = _pck_update(
            pred_px,
            batch["keypoints_px"],
            batch["labelled"],
            batch[self.normaliser_key],
            self._threshold_tensor(),
        )
        self.hits += hits.to(self.hits.device)
        self.counts += counts.to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        """Fractions of correct joints per threshold, pooled and per group."""
        return _pck_compute(
            self.hits, self.counts, self.thresholds, self.joint_names, self.groups, self.prefix
        )

    def curve(self) -> tuple[Tensor, Tensor]:
        """Pooled fraction per threshold, synced across processes like :meth:`compute`.

        Returns zeros where no joint has been counted yet.

        Shapes:
            returns: ``thresholds (T,)`` float64 and ``fraction (T,)`` float64.
        """
        with synced(self):
            fraction = _pck_curve(self.hits, self.counts).clone()
        return self._threshold_tensor(), fraction

    def _threshold_tensor(self) -> Tensor:
        return torch.tensor(self.thresholds, dtype=torch.float64, device=self.hits.device)


class PDJ(PCK):
    """Percent of Detected Joints (Toshev & Szegedy, DeepPose, CVPR 2014, §5).

    PCK whose normaliser is the torso diameter, ``batch["torso_diameter_px"]``: the distance in
    pixels between the ground-truth left shoulder and right hip
    (``segment_lengths(target_px, labelled, skeleton.torso)``). Samples where it cannot be
    measured have 0 and are excluded. DeepPose Fig. 5 plots the fraction against the
    threshold; use :meth:`curve` with a dense ``thresholds`` for that.

    Shapes:
        as :class:`PCK`, with ``normaliser_key="torso_diameter_px"``.
    """

    def __init__(
        self,
        joint_names: Sequence[str],
        thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        groups: dict[str, list[int]] | None = None,
        prefix: str = "pdj",
    ) -> None:
        super().__init__(joint_names, "torso_diameter_px", thresholds, groups, prefix)


class PCKh(PCK):
    """PCK normalised by the head segment (Andriluka et al., "2D Human Pose Estimation: New
    Benchmark and State of the Art Analysis", CVPR 2014, MPII).

    The normaliser, ``batch["head_size_px"]``, is the head size in pixels: the neck to head-top
    segment on LSP-style data (``segment_lengths(target_px, labelled, skeleton.head)``), or on
    MPII the official protocol's 0.6 x the head-box diagonal, which the MPII reader computes
    from ``mpii_gt_val.mat`` (``lightning_pose.data.mpii.MPIIKeypoints``, ``head_boxes``; the
    segment where no head box is given). The standard report is PCKh@0.5.

    Shapes:
        as :class:`PCK`, with ``normaliser_key="head_size_px"``.
    """

    def __init__(
        self,
        joint_names: Sequence[str],
        thresholds: Sequence[float] = (0.5,),
        groups: dict[str, list[int]] | None = None,
        prefix: str = "pckh",
    ) -> None:
        super().__init__(joint_names, "head_size_px", thresholds, groups, prefix)
