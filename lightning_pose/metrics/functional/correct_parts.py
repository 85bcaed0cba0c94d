"""PCP, the strict Percentage of Correct Parts, as pure functions: :func:`pcp` scores arrays of
keypoints; :func:`_pcp_update` is the per-batch sum behind :class:`~lightning_pose.metrics.pcp.PCP`.

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

Conventions, as for PCK (:mod:`lightning_pose.metrics.functional.correct_keypoints`):
    * A limb is *counted* when every joint of both its true end points is labelled with a
      finite position and the true length is finite and > 0; other limbs drop out of
      numerator and denominator alike.
    * A counted limb with a non-finite predicted joint in either end point is a miss. Joints a
      limb does not use never affect it.
    * Sums are float64 ``hits (T, L)`` and ``counts (L,)``, reduced across processes with
      ``sum``; :func:`~lightning_pose.metrics.functional.correct_keypoints._pck_compute` turns
      them into fractions, keyed by limb names and limb groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.segments import limb_endpoints
from lightning_pose.metrics.utilities import ArrayLike, _check_prediction, _pooled, _tensor

__all__ = ["_pcp_hits", "_pcp_update", "pcp"]


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


def pcp(
    pred_px: ArrayLike,
    target_px: ArrayLike,
    labelled: ArrayLike,
    endpoint_weights: ArrayLike,
    thresholds: Sequence[float] = (0.5,),
) -> Tensor:
    """Strict Percentage of Correct Parts (Ferrari et al., CVPR 2008, §6; DeepPose Table 1):
    the fraction of counted limbs whose two predicted end points both lie within
    ``t * true limb length`` of the true ones (module docstring).

    Shapes:
        pred_px, target_px: ``(B, K, 2)`` pixels; labelled: ``(B, K)`` bool.
        endpoint_weights: ``(L, 2, K)``, each row averaging joints into a limb's start or end
            point (``Skeleton.limb_endpoint_weights()``).
        returns: ``(T,)`` float64 in [0, 1].

    Raises:
        ValueError: shapes or dtypes are off, or no limb is counted.
    """
    hits, counts = _pcp_update(
        _tensor(pred_px, "pred_px"),
        _tensor(target_px, "target_px"),
        _tensor(labelled, "labelled"),
        _tensor(endpoint_weights, "endpoint_weights").double(),
        torch.tensor([float(t) for t in thresholds], dtype=torch.float64),
    )
    return _pooled(hits, counts, "limb (both ends labelled, length > 0)")
