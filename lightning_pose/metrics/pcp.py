"""PCP, the strict Percentage of Correct Parts, as a torchmetrics ``Metric``.

Ferrari, Marin-Jimenez & Zisserman ("Progressive search space reduction for human pose
estimation", CVPR 2008, §6) score a body part (a limb, a stick between two end points) as
correct when both of its predicted end points lie within half the true limb length of the
corresponding true end points. DeepPose (Toshev & Szegedy, CVPR 2014, §5 and Table 1) reports
this strict PCP at 0.5 per limb on LSP. Here the fraction ``t`` is a parameter:

    correct(l, t) = ||pred_start - true_start|| <= t * len  and
                    ||pred_end   - true_end||   <= t * len,   len = ||true_end - true_start||

An end point is the mean of one or more joints (``Skeleton.limbs``; the LSP torso runs from
the hip midpoint to the shoulder midpoint), computed by
:func:`~lightning_pose.codecs.segments.limb_endpoints` for truth and prediction alike.

Conventions, as for PCK (:mod:`lightning_pose.metrics.functional`):
    * A limb is *counted* when every joint of both its true end points is labelled with a
      finite position and the true length is finite and > 0; other limbs drop out of
      numerator and denominator alike.
    * A counted limb with a non-finite predicted joint in either end point is a miss. Joints a
      limb does not use never affect it.
    * Sums are float64 ``hits (T, L)`` and ``counts (L,)``, reduced across processes with
      ``sum``; :func:`~lightning_pose.metrics.functional._pck_compute` turns them into
      fractions, keyed by limb names and limb groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_pose.codecs.segments import limb_endpoints
from lightning_pose.metrics.functional import _check_prediction, _pck_compute
from lightning_pose.metrics.pck import _validate

__all__ = ["PCP", "_pcp_hits", "_pcp_update"]


def _check_weights(endpoint_weights: Tensor, num_joints: int) -> None:
    if endpoint_weights.ndim != 3 or endpoint_weights.shape[1:] != (2, num_joints):
        raise ValueError(
            f"endpoint_weights must have shape (L, 2, K={num_joints}), "
            f"got {tuple(endpoint_weights.shape)}"
        )
    if not endpoint_weights.is_floating_point():
        raise ValueError(
            f"endpoint_weights must be a floating point tensor, got {endpoint_weights.dtype}"
        )


def _pcp_update(
    pred_px: Tensor,
    target_px: Tensor,
    labelled: Tensor,
    endpoint_weights: Tensor,
    thresholds: Tensor,
) -> tuple[Tensor, Tensor]:
    """Per-limb hit and count sums of one batch (strict PCP, Ferrari et al. 2008; DeepPose §5).

    Shapes:
        pred_px: ``(B, K, 2)`` predicted (x, y) in original-image pixels.
        target_px: ``(B, K, 2)`` ground-truth (x, y) in pixels.
        labelled: ``(B, K)`` bool, the true position is annotated.
        endpoint_weights: ``(L, 2, K)`` averaging weights, row ``(l, 0)`` limb l's start and
            ``(l, 1)`` its end (``Skeleton.limb_endpoint_weights()``).
        thresholds: ``(T,)`` fractions of the true limb length.
        returns: ``hits (T, L)`` and ``counts (L,)``, float64, on the device of ``pred_px``.
    """
    hit, counted = _pcp_hits(pred_px, target_px, labelled, endpoint_weights, thresholds)
    return hit.sum(dim=1, dtype=torch.float64), counted.sum(dim=0, dtype=torch.float64)


def _pcp_hits(
    pred_px: Tensor,
    target_px: Tensor,
    labelled: Tensor,
    endpoint_weights: Tensor,
    thresholds: Tensor,
) -> tuple[Tensor, Tensor]:
    """Which limbs are counted and which counted limbs are hits (shapes as
    :func:`_pcp_update`); returns ``hit (T, B, L)`` and ``counted (B, L)``, bool."""
    _check_prediction(pred_px, target_px, labelled)
    _check_weights(endpoint_weights, pred_px.shape[1])
    if thresholds.ndim != 1:
        raise ValueError(f"thresholds must have shape (T,), got {tuple(thresholds.shape)}")

    device = pred_px.device
    pred = pred_px.double()  # (B, K, 2)
    target = target_px.to(device, torch.float64)  # (B, K, 2)
    weights = endpoint_weights.to(device, torch.float64)  # (L, 2, K)
    thr = thresholds.to(device, torch.float64)  # (T,)

    # limb_endpoints averages with an einsum over all K joints, where 0 * NaN = NaN: pass
    # non-finite joints as unlabelled so that they are zeroed and reach only the limbs that
    # use them, which the returned flag then marks.
    truth_ok = labelled.to(device) & torch.isfinite(target).all(dim=-1)  # (B, K)
    true_end, limb_labelled = limb_endpoints(target, truth_ok, weights)  # (B, L, 2, 2), (B, L)
    pred_end, pred_finite = limb_endpoints(pred, torch.isfinite(pred).all(dim=-1), weights)

    length = torch.linalg.vector_norm(true_end[:, :, 1] - true_end[:, :, 0], dim=-1)  # (B, L)
    counted = limb_labelled & torch.isfinite(length) & (length > 0)  # (B, L)
    end_dist = torch.linalg.vector_norm(pred_end - true_end, dim=-1)  # (B, L, 2)
    # Strict PCP: both ends within the radius, i.e. the farther one is.
    worst = end_dist.amax(dim=-1)  # (B, L)
    worst = torch.where(pred_finite, worst, torch.full_like(worst, torch.inf))
    radius = thr[:, None, None] * length[None]  # (T, B, L)
    close = worst[None] <= radius  # (T, B, L); inf or NaN distances compare False
    return close & counted[None], counted


class PCP(Metric):
    """Strict Percentage of Correct Parts (Ferrari et al., CVPR 2008; DeepPose Table 1).

    A counted limb is correct at threshold ``t`` when both predicted end points are within
    ``t * true limb length`` of the corresponding true end points (distance ``<=``); see the
    module docstring for which limbs are counted. The standard report is PCP@0.5.

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
        pred_px: ``(B, K, 2)`` predicted (x, y) in original-image pixels.
        target_px: ``(B, K, 2)`` ground-truth (x, y) in pixels.
        labelled: ``(B, K)`` bool, the true position is annotated.
        compute(): dict of scalar float64 tensors, ``f"{prefix}@{t:g}"`` (all limbs pooled)
            and ``f"{prefix}@{t:g}/{group}"``; keys with no counted limb are left out.
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
        _validate_limbs(self.limb_names, self.groups, weights)
        _validate(self.limb_names, self.thresholds, self.groups)  # thresholds

        self.register_buffer("endpoint_weights", weights, persistent=False)
        n_t, n_l = len(self.thresholds), len(self.limb_names)
        self.add_state(
            "hits", default=torch.zeros(n_t, n_l, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "counts", default=torch.zeros(n_l, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, pred_px: Tensor, target_px: Tensor, labelled: Tensor) -> None:
        """Add one batch; see the class docstring for shapes."""
        n_k = self.endpoint_weights.shape[-1]
        if pred_px.ndim == 3 and pred_px.shape[1] != n_k:
            raise ValueError(
                f"pred_px must have shape (B, K={n_k}, 2) to match endpoint_weights, "
                f"got {tuple(pred_px.shape)}"
            )
        thresholds = torch.tensor(self.thresholds, dtype=torch.float64, device=self.hits.device)
        hits, counts = _pcp_update(pred_px, target_px, labelled, self.endpoint_weights, thresholds)
        self.hits += hits.to(self.hits.device)
        self.counts += counts.to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        """Fractions of correct limbs per threshold, pooled and per limb group."""
        return _pck_compute(
            self.hits, self.counts, self.thresholds, self.limb_names, self.groups, self.prefix
        )


def _validate_limbs(
    limb_names: tuple[str, ...], groups: dict[str, list[int]] | None, weights: Tensor
) -> None:
    if not limb_names:
        raise ValueError("limb_names must name at least one limb")
    if len(set(limb_names)) != len(limb_names):
        raise ValueError(f"limb_names must be unique, got {limb_names}")
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
    for group, idx in (groups or {}).items():
        if not idx:
            raise ValueError(f"groups[{group!r}] must list at least one limb index")
        out = [i for i in idx if not 0 <= i < n_l]
        if out:
            raise ValueError(f"groups[{group!r}] has limb indices {out} outside [0, {n_l})")
