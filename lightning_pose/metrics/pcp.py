"""PCP, the strict Percentage of Correct Parts (Ferrari et al., CVPR 2008, §6; DeepPose §5 and
Table 1), as a torchmetrics ``Metric``: the definition and its conventions are
:mod:`lightning_pose.metrics.functional.correct_parts`'s, which does the arithmetic. The states are
float64 sums ``hits (T, L)`` and ``counts (L,)``, reduced across processes with ``sum``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_pose.data.dataset import Batch
from lightning_pose.metrics.functional.correct_keypoints import _pck_compute
from lightning_pose.metrics.functional.correct_parts import _pcp_update
from lightning_pose.metrics.utilities import _check_names

__all__ = ["PCP"]


class PCP(Metric):
    """Strict Percentage of Correct Parts (Ferrari et al., CVPR 2008; DeepPose Table 1).

    A counted limb is correct at threshold ``t`` when both predicted end points are within
    ``t * true limb length`` of the corresponding true end points (distance ``<=``); see
    :mod:`lightning_pose.metrics.functional.correct_parts` for which limbs are counted. The standard
    report is PCP@0.5.

    Args:
        limb_names: name of each of the L limbs (``Skeleton.limb_names``).
        endpoint_weights: ``(L, 2, K)`` weights >= 0, each row summing to 1, that average
            joints into limb end points (``Skeleton.limb_endpoint_weights()``). Kept as a
            non-persistent buffer: it follows the metric's device, is no metric state and is
            not saved in ``state_dict``.
        thresholds: fractions ``t`` of the true limb length, T of them.
        groups: limb groups to report, e.g. ``{"upper_arm": [5, 7]}``
            (``Skeleton.limb_groups()``); None reports every limb on its own.
        prefix: first part of every key in :meth:`compute`.

    Shapes:
        update: ``pred_px (B, K, 2)`` predicted (x, y) in original-image pixels; ``batch``
            with ``keypoints_px (B, K, 2)`` ground truth in pixels and ``labelled (B, K)``
            bool, the true position is annotated.
        compute(): dict of scalar float64 tensors, ``f"{prefix}@{t:g}"`` (all limbs pooled)
            and ``f"{prefix}@{t:g}/{group}"``; keys with no counted limb are left out.

    Raises:
        ValueError: no or repeated limb names, ``endpoint_weights`` not ``(L, 2, K)`` rows of
            weights >= 0 summing to 1, a bad threshold or group index; in ``update``, inputs
            of the wrong shape or dtype.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    hits: Tensor
    counts: Tensor
    endpoint_weights: Tensor

    def __init__(
        self,
        limb_names: Sequence[str],
        endpoint_weights: Tensor | np.ndarray,
        thresholds: Sequence[float] = (0.5,),
        groups: dict[str, list[int]] | None = None,
        prefix: str = "pcp",
    ) -> None:
        super().__init__()
        self.limb_names = tuple(limb_names)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.groups = None if groups is None else {g: list(idx) for g, idx in groups.items()}
        self.prefix = prefix
        weights = torch.as_tensor(endpoint_weights, dtype=torch.float64).detach().cpu()
        _check_names(self.limb_names, self.thresholds, self.groups, what="limb")
        _check_endpoint_weights(self.limb_names, weights)

        self.register_buffer("endpoint_weights", weights, persistent=False)
        n_t, n_l = len(self.thresholds), len(self.limb_names)
        self.add_state(
            "hits", default=torch.zeros(n_t, n_l, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "counts", default=torch.zeros(n_l, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        """Add one batch; see the class docstring for shapes."""
        n_k = self.endpoint_weights.shape[-1]
        if pred_px.ndim == 3 and pred_px.shape[1] != n_k:
            raise ValueError(
                f"pred_px must have shape (B, K={n_k}, 2) to match endpoint_weights, "
                f"got {tuple(pred_px.shape)}"
            )
        thresholds = torch.tensor(self.thresholds, dtype=torch.float64, device=self.hits.device)
        hits, counts = _pcp_update(
            pred_px, batch["keypoints_px"], batch["labelled"], self.endpoint_weights, thresholds
        )
        self.hits += hits.to(self.hits.device)
        self.counts += counts.to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        """Fractions of correct limbs per threshold, pooled and per limb group."""
        return _pck_compute(
            self.hits, self.counts, self.thresholds, self.limb_names, self.groups, self.prefix
        )


def _check_endpoint_weights(limb_names: tuple[str, ...], weights: Tensor) -> None:
    n_l = len(limb_names)
    if weights.ndim != 3 or weights.shape[:2] != (n_l, 2) or weights.shape[2] == 0:
        raise ValueError(
            f"endpoint_weights must have shape (L={n_l}, 2, K) with one row pair per limb "
            f"name, got {tuple(weights.shape)}"
        )
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("endpoint_weights must be finite and >= 0")
    sums = weights.sum(dim=-1)  # (L, 2)
    bad = (sums - 1).abs() > 1e-6
    if bad.any():
        limb, end = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"endpoint_weights rows must each sum to 1 (a mean of joints): limb "
            f"{limb_names[limb]!r} {('start', 'end')[end]} sums to {float(sums[limb, end]):g}"
        )
