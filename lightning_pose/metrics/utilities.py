"""Input checks and sum helpers shared by the functional metrics and the metric classes.

Everything here is a pure function of tensors (torch and NumPy only); nothing imports back from
the rest of :mod:`lightning_pose.metrics`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray

__all__ = ["ArrayLike", "keypoint_distances"]


def keypoint_distances(pred_px: Tensor, target_px: Tensor) -> Tensor:
    """Euclidean distance between predicted and ground-truth keypoints.

    Shapes:
        pred_px: ``(..., K, 2)`` (x, y) in pixels.
        target_px: same shape as ``pred_px``, pixels.
        returns: ``(..., K)`` distances in pixels (NaN/inf where an input is not finite).

    Raises:
        ValueError: the shapes differ or the last dimension is not 2.
    """
    if pred_px.shape != target_px.shape:
        raise ValueError(
            f"target_px must have the shape of pred_px {tuple(pred_px.shape)}, "
            f"got {tuple(target_px.shape)}"
        )
    if pred_px.ndim < 2 or pred_px.shape[-1] != 2:
        raise ValueError(f"pred_px must have shape (..., K, 2), got {tuple(pred_px.shape)}")
    return torch.linalg.vector_norm(pred_px - target_px, dim=-1)


def _check_keypoints(name: str, x: Tensor) -> None:
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (B, K, 2) in pixels, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")


def _check_labelled(labelled: Tensor, bk: torch.Size) -> None:
    if labelled.shape != bk:
        raise ValueError(
            f"labelled must have shape (B, K) = {tuple(bk)}, got {tuple(labelled.shape)}"
        )
    if labelled.dtype != torch.bool:
        raise ValueError(f"labelled must be a bool tensor, got dtype {labelled.dtype}")


def _check_prediction(pred_px: Tensor, target_px: Tensor, labelled: Tensor) -> None:
    """Shapes and dtypes shared by every metric's update: (B, K, 2), (B, K, 2), (B, K) bool."""
    _check_keypoints("pred_px", pred_px)
    if target_px.shape != pred_px.shape:
        raise ValueError(
            f"target_px must have shape (B, K, 2) = {tuple(pred_px.shape)} like pred_px, "
            f"got {tuple(target_px.shape)}"
        )
    _check_keypoints("target_px", target_px)
    _check_labelled(labelled, pred_px.shape[:2])


def _check_names(
    names: tuple[str, ...],
    thresholds: tuple[float, ...],
    groups: dict[str, list[int]] | None,
    what: str = "joint",
) -> None:
    """A metric class's names (joints or limbs), thresholds and groups of name indices.

    Raises:
        ValueError: no or repeated names, no threshold, a threshold that is negative, not
            finite or repeated once formatted with ``:g``, or an empty group or a group index
            outside ``[0, len(names))``.
    """
    if not names:
        raise ValueError(f"{what}_names must name at least one {what}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}_names must be unique, got {names}")
    if not thresholds:
        raise ValueError("thresholds must hold at least one fraction of the normaliser")
    if any(not math.isfinite(t) or t < 0 for t in thresholds):
        raise ValueError(f"thresholds must be finite and >= 0, got {thresholds}")
    if len({f"{t:g}" for t in thresholds}) != len(thresholds):
        raise ValueError(f"thresholds must be distinct when formatted with :g, got {thresholds}")
    for group, idx in (groups or {}).items():
        if not idx:
            raise ValueError(f"groups[{group!r}] must list at least one {what} index")
        bad = [i for i in idx if not 0 <= i < len(names)]
        if bad:
            raise ValueError(
                f"groups[{group!r}] has {what} indices {bad} outside [0, {len(names)})"
            )


def _sums_per_image(hit: Tensor, counted: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image sums of a metric's hits (or errors) and counts, for resampling images.

    Shapes:
        hit: ``(T, B, K)`` (K joints or limbs); counted: ``(B, K)``.
        returns: ``(B, T)`` and ``(B,)``, float64; summed over images they are the per-joint
        sums of the metric's update, summed over joints.
    """
    return hit.sum(dim=2, dtype=torch.float64).T, counted.sum(dim=1, dtype=torch.float64)


def _group_ratios(sums: Tensor, counts: Tensor, groups: dict[str, list[int]]) -> dict[str, Tensor]:
    """Per-column sums over all columns and over each group's, divided by the group's count.

    Keys are ``""`` (all columns pooled) and ``f"/{group}"``; a group whose count is 0 is left
    out, so no value is NaN.

    Shapes:
        sums: ``(T, K)``; counts: ``(K,)``; returns ``(T,)`` per key.
    """
    named: dict[str, tuple[Tensor, Tensor]] = {"": (sums.sum(dim=1), counts.sum())}  # (T,), ()
    for group, idx in groups.items():
        index = torch.as_tensor(idx, dtype=torch.long, device=sums.device)
        named[f"/{group}"] = (sums[:, index].sum(dim=1), counts[index].sum())
    return {
        suffix: group_sums / group_count
        for suffix, (group_sums, group_count) in named.items()
        if group_count.item() > 0  # one host sync per group, in compute only
    }


def _tensor(x: ArrayLike, name: str) -> Tensor:
    """A tensor on the CPU from a tensor or a NumPy array (the functional API's inputs).

    Raises:
        TypeError: ``x`` is neither.
    """
    if isinstance(x, Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}")


def _pooled(sums: Tensor, counts: Tensor, what: str) -> Tensor:
    """(T, K) sums and (K,) counts -> (T,) pooled over joints; raises when nothing counted."""
    total = counts.sum()
    if total.item() <= 0:
        raise ValueError(f"nothing to score: no {what} counted")
    return sums.sum(dim=1) / total
