"""Losses on box-normalised joint coordinates."""

from __future__ import annotations

import torch


def visible_l2_loss(
    pred_norm: torch.Tensor, target_norm: torch.Tensor, visible: torch.Tensor
) -> torch.Tensor:
    """Squared L2 distance between predicted and true joints, averaged over visible joints.

    DeepPose §3, Eq. 3: ``sum_i ||y_i - psi_i(x)||^2`` over the joints of each example, here
    weighted by visibility and divided by the number of visible joints in the batch, so that
    unlabelled or out-of-frame joints add nothing (and a batch with none gives 0, not NaN).

    Shapes:
        pred_norm, target_norm: (B, K, 2) box-normalised. visible: (B, K) bool.
        returns () float.

    Raises:
        ValueError: the shapes disagree.
    """
    if (
        pred_norm.ndim != 3
        or pred_norm.shape[-1] != 2
        or pred_norm.shape != target_norm.shape
        or pred_norm.shape[:2] != visible.shape
    ):
        raise ValueError(
            f"visible_l2_loss: pred {tuple(pred_norm.shape)}, target "
            f"{tuple(target_norm.shape)} and visible {tuple(visible.shape)} must be (B, K, 2), "
            "(B, K, 2) and (B, K)"
        )
    weight = visible.to(pred_norm.dtype)  # (B, K)
    # Invisible joints may hold placeholder coordinates: zero them so no inf/NaN leaks in.
    diff = torch.where(visible[..., None], pred_norm - target_norm, 0.0)  # (B, K, 2)
    return (diff.pow(2).sum(-1) * weight).sum() / weight.sum().clamp(min=1.0)
