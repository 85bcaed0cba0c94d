"""Segments of a pose: lengths between two joints (torso diameter, head segment) and limb end
points (PCP sticks, body parts). The one home of these rules for data, metrics and models.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check(keypoints: Tensor, labelled: Tensor) -> None:
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (B, K, 2), got {tuple(keypoints.shape)}")
    if not keypoints.is_floating_point():
        raise ValueError(f"keypoints must be a floating point tensor, got {keypoints.dtype}")
    if labelled.shape != keypoints.shape[:2] or labelled.dtype != torch.bool:
        raise ValueError(
            f"labelled must be a bool tensor of shape (B, K) = {tuple(keypoints.shape[:2])}, "
            f"got {labelled.dtype} {tuple(labelled.shape)}"
        )


def segment_lengths(keypoints: Tensor, labelled: Tensor, joints: tuple[int, int]) -> Tensor:
    """Length of the segment between two joints, in the keypoints' unit.

    The torso diameter of DeepPose §5 is ``segment_lengths(kp, labelled, skeleton.torso)``
    (left shoulder to right hip) and the LSP-style head segment of PCKh is
    ``skeleton.head`` (neck to head top). Where either end is not labelled or not finite the
    length is 0, which the metrics read as "cannot be measured" and exclude.

    Shapes:
        keypoints: (B, K, 2). labelled: (B, K) bool. returns (B,), 0 where not measurable.

    Raises:
        ValueError: shapes or dtypes are off, or a joint index is out of range.
    """
    _check(keypoints, labelled)
    a, b = joints
    k = keypoints.shape[1]
    for j in (a, b):
        if not -k <= j < k:
            raise ValueError(f"joints index {j} out of range for K={k} joints")
    length = torch.linalg.vector_norm(keypoints[:, a] - keypoints[:, b], dim=-1)  # (B,)
    ok = labelled[:, a] & labelled[:, b] & torch.isfinite(length)
    return torch.where(ok, length, torch.zeros_like(length))


def limb_endpoints(keypoints: Tensor, labelled: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """End points of every limb, each the mean of its joints (``Skeleton.limbs``).

    Shapes:
        keypoints: (B, K, 2). labelled: (B, K) bool.
        weights: (L, 2, K) averaging weights (``Skeleton.limb_endpoint_weights()``).
        returns endpoints (B, L, 2, 2) ``[b, l, start|end, x|y]`` and labelled (B, L) bool
        (every joint of both ends labelled); the end points of unlabelled limbs are 0.
    """
    _check(keypoints, labelled)
    if weights.ndim != 3 or weights.shape[1:] != (2, keypoints.shape[1]):
        raise ValueError(
            f"weights must have shape (L, 2, K={keypoints.shape[1]}), got {tuple(weights.shape)}"
        )
    w = weights.to(keypoints.device, keypoints.dtype)
    uses = w > 0  # (L, 2, K)
    # A limb is labelled when no joint it uses is unlabelled: (B, L)
    missing = (~labelled)[:, None, None, :] & uses[None]  # (B, L, 2, K)
    limb_labelled = ~missing.flatten(2).any(dim=-1)
    safe = torch.where(labelled[..., None], keypoints, torch.zeros_like(keypoints))  # (B, K, 2)
    endpoints = torch.einsum("lek,bkc->blec", w, safe)  # (B, L, 2, 2)
    return endpoints, limb_labelled
