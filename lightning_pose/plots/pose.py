"""Poses drawn on images: the labels and the estimate as sticks and joints, a sample
as the model sees it, a grid of images and the joints' label statistics.

Figures use matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state), so
they save from a headless process and display in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from lightning_pose.codecs.grid import norm_to_grid
from lightning_pose.data.skeleton import Skeleton

TRUE_COLOUR = (40, 200, 40)  # RGB: the labels


PREDICTED_COLOUR = (255, 40, 40)  # RGB: the model's estimate


def draw_skeleton(
    image: np.ndarray,
    keypoints_px: np.ndarray,
    skeleton: Skeleton,
    colour: tuple[int, int, int],
    labelled: np.ndarray | None = None,
    limb_colour: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Draw joints (dots, ``colour``) and limbs (lines between their end points,
    ``limb_colour``, default ``colour``) on a copy of an RGB image; with ``labelled``, only
    labelled joints and limbs whose joints are all labelled. Never fails on a bad estimate:
    joints with a NaN or infinite coordinate are not drawn (nor their limbs), joints far
    outside the image are clipped to within 4 image sides of it.

    Shapes:
        image: (H, W, 3) uint8. keypoints_px: (K, 2) pixels. labelled: (K,) bool.
        returns (H, W, 3) uint8.
    """
    out = image.copy()
    K = skeleton.num_joints
    labelled = np.ones(K, dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
    # a diverged model's estimate (NaN, 1e30) is drawn where it can be: non-finite joints are
    # left out, far ones clipped to a band around the image (OpenCV takes int32 coordinates)
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64)
    labelled = labelled & np.isfinite(keypoints_px).all(axis=-1)
    reach = 4.0 * max(image.shape[:2])
    keypoints_px = np.clip(np.nan_to_num(keypoints_px), -reach, reach)
    radius = max(2, round(max(image.shape[:2]) / 150))
    weights = skeleton.limb_endpoint_weights()  # (L, 2, K)
    limb_ok = ~((weights > 0) & ~labelled).any(axis=(1, 2))  # (L,)
    kp = np.where(labelled[:, None], keypoints_px, 0.0)  # (K, 2): no NaN into the einsum
    ends = np.round(np.einsum("lek,kc->lec", weights, kp)).astype(int)  # (L, 2, 2) pixels
    for (a, b), ok in zip(ends, limb_ok, strict=True):
        if ok:
            line_colour = colour if limb_colour is None else limb_colour
            cv2.line(out, tuple(map(int, a)), tuple(map(int, b)), line_colour, max(1, radius // 2))
    for (x, y), ok in zip(np.round(keypoints_px).astype(int), labelled, strict=True):
        if ok:
            cv2.circle(out, (int(x), int(y)), radius, colour, -1)
    return out


def draw_comparison(
    image: np.ndarray,
    predicted_px: np.ndarray,
    true_px: np.ndarray,
    labelled: np.ndarray,
    skeleton: Skeleton,
) -> np.ndarray:
    """The true pose (labelled joints, :data:`TRUE_COLOUR`) and, over it, the predicted one
    (every joint, :data:`PREDICTED_COLOUR`).

    Shapes:
        image: (H, W, 3) uint8. predicted_px, true_px: (K, 2) pixels. labelled: (K,) bool.
        returns (H, W, 3) uint8.
    """
    out = draw_skeleton(image, true_px, skeleton, TRUE_COLOUR, labelled)
    return draw_skeleton(out, predicted_px, skeleton, PREDICTED_COLOUR)


def draw_sample(sample: Mapping[str, Any], skeleton: Skeleton) -> np.ndarray:
    """A sample's network input with its labelled joints and limbs (:data:`TRUE_COLOUR`), in
    the crop's pixels (after any augmentation).

    Shapes:
        sample: ``image (3, S, S)`` float in [0, 1], ``keypoints_norm (K, 2)``,
        ``labelled (K,)``. returns (S, S, 3) uint8.
    """
    image = (sample["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    keypoints_px = norm_to_grid(sample["keypoints_norm"].numpy(), image.shape[0])  # (K, 2)
    return draw_skeleton(image, keypoints_px, skeleton, TRUE_COLOUR, sample["labelled"].numpy())


def image_grid_figure(
    images: Sequence[np.ndarray], titles: Sequence[str] = (), cols: int = 4
) -> Figure:
    """Images in a grid, axes off. Shapes: images: N x (H, W, 3) uint8."""
    rows = max(1, -(-len(images) // cols))
    fig = Figure(figsize=(3 * cols, 3 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i])
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def joint_visibility_figure(
    joint_names: Sequence[str], labelled: np.ndarray, visible: np.ndarray
) -> Figure:
    """Per joint, the fraction of images where it is labelled and where it is labelled and
    visible (not occluded).

    Shapes:
        labelled, visible: (N, K) bool over N images.
    """
    x = np.arange(len(joint_names))
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    ax.bar(x - 0.2, 100 * labelled.mean(axis=0), width=0.4, label="labelled")
    ax.bar(x + 0.2, 100 * (labelled & visible).mean(axis=0), width=0.4, label="visible")
    ax.set_xticks(x, joint_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"% of {labelled.shape[0]} images")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    return fig
