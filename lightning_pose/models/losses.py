"""Losses with per-joint float weights: coordinate L2 and L1, heatmap MSE, binary cross-entropy,
SimCC's KL divergence.

Every loss takes ``weight (B, K)`` (bool or float: e.g. ``labelled``, or a heatmap codec's
target weight) and returns the weighted mean over the (B, K) joints of a per-joint error, so a
joint of weight 0 adds nothing (even where its target holds a placeholder) and a batch whose
weights are all 0 gives 0, not NaN. Losses are pure functions of tensors (mmpose's convention
of a per-joint ``target_weight``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_weight(weight: torch.Tensor, bk: torch.Size, name: str) -> None:
    if weight.shape != bk:
        raise ValueError(
            f"{name}: weight must have shape (B, K) = {tuple(bk)}, got {tuple(weight.shape)}"
        )


def _check_coordinates(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, name: str):
    if pred.ndim != 3 or pred.shape[-1] != 2 or pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be "
            "(B, K, 2)"
        )
    _check_weight(weight, pred.shape[:2], name)


def _mask(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Zero ``x (B, K, ...)`` where ``weight (B, K)`` is 0, before any arithmetic on it, so a
    zero-weight joint's inf/NaN placeholder reaches neither the loss nor its gradient."""
    keep = (weight > 0).reshape(*weight.shape, *([1] * (x.ndim - weight.ndim)))
    return torch.where(keep, x, torch.zeros_like(x))


def _weighted_mean(per_joint: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * e) / sum(w)`` over (B, K); 0 where ``sum(w) == 0``."""
    w = weight.to(per_joint.dtype)
    total = w.sum()
    return (per_joint * w).sum() / torch.where(total > 0, total, torch.ones_like(total))


def coordinate_l2_loss(
    pred_norm: torch.Tensor, target_norm: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Squared L2 distance between predicted and true joints, weighted mean over joints.

    DeepPose §3, Eq. 3: ``sum_i ||y_i - psi_i(x)||^2`` over the joints of each example, here
    weighted per joint (``labelled``) and divided by the total weight of the batch.

    Shapes:
        pred_norm, target_norm: (B, K, 2) box-normalised. weight: (B, K) bool or float.
        returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    _check_coordinates(pred_norm, target_norm, weight, "coordinate_l2_loss")
    per_joint = _mask(pred_norm - target_norm, weight).pow(2).sum(-1)  # (B, K)
    return _weighted_mean(per_joint, weight)


def coordinate_l1_loss(
    pred_norm: torch.Tensor, target_norm: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """L1 distance ``|dx| + |dy|`` between predicted and true joints, weighted mean over joints:
    the loss integral regression is trained with (Sun et al. 2018, §3).

    Shapes:
        pred_norm, target_norm: (B, K, 2) box-normalised. weight: (B, K) bool or float.
        returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    _check_coordinates(pred_norm, target_norm, weight, "coordinate_l1_loss")
    per_joint = _mask(pred_norm - target_norm, weight).abs().sum(-1)  # (B, K)
    return _weighted_mean(per_joint, weight)


def heatmap_mse_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between predicted and target heatmaps (Tompson et al. 2015 §3, Eq. 1),
    averaged over each joint's heatmap cells, then weighted mean over joints.

    Shapes:
        pred, target: (B, K, h, w). weight: (B, K) bool or float. returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(
            f"heatmap_mse_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
            "must both be (B, K, h, w)"
        )
    _check_weight(weight, pred.shape[:2], "heatmap_mse_loss")
    per_joint = _mask(pred - target, weight).pow(2).mean(dim=(-2, -1))  # (B, K)
    return _weighted_mean(per_joint, weight)


def binary_cross_entropy_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Binary cross-entropy of logits against {0, 1} (or soft) labels, averaged over each
    joint's trailing dimensions (e.g. its windows), then weighted mean over joints (Li & Chan
    2014 §3: the detection tasks' loss).

    Shapes:
        logits, target: (B, K, ...). weight: (B, K) bool or float. returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    if logits.ndim < 2 or logits.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_loss: logits {tuple(logits.shape)} and target "
            f"{tuple(target.shape)} must both be (B, K, ...)"
        )
    _check_weight(weight, logits.shape[:2], "binary_cross_entropy_loss")
    logits, target = _mask(logits, weight), _mask(target.to(logits.dtype), weight)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, K, ...)
    per_joint = bce.flatten(2).mean(dim=-1) if bce.ndim > 2 else bce  # (B, K)
    return _weighted_mean(per_joint, weight)


def simcc_kl_loss(
    logits_x: torch.Tensor,
    logits_y: torch.Tensor,
    target_x: torch.Tensor,
    target_y: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    """KL divergence ``KL(target || softmax(logits))`` of each axis's bin distribution, summed
    over the two axes, then weighted mean over joints (SimCC, Li et al. 2022 §3.3: the loss of
    Gaussian-smoothed coordinate classification). Computed in float32.

    Shapes:
        logits_x, target_x: (B, K, N_x); logits_y, target_y: (B, K, N_y); the targets are
        distributions over the bins. weight: (B, K) bool or float. returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    for logits, target, axis in ((logits_x, target_x, "x"), (logits_y, target_y, "y")):
        if logits.ndim != 3 or logits.shape != target.shape:
            raise ValueError(
                f"simcc_kl_loss: {axis} logits {tuple(logits.shape)} and target "
                f"{tuple(target.shape)} must both be (B, K, N_{axis})"
            )
        _check_weight(weight, logits.shape[:2], "simcc_kl_loss")
    per_joint = 0.0
    for logits, target in ((logits_x, target_x), (logits_y, target_y)):
        logits, target = _mask(logits.float(), weight), _mask(target.float(), weight)
        log_prob = logits.log_softmax(dim=-1)  # (B, K, N)
        kl = torch.xlogy(target, target) - target * log_prob  # (B, K, N); 0 log 0 = 0
        per_joint = per_joint + kl.sum(dim=-1)  # (B, K)
    return _weighted_mean(per_joint, weight)
