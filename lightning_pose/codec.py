"""Coordinate codec: original-image pixels <-> box crop pixels <-> box-normalised coordinates.

The one home of the coordinate convention (DeepPose §3, Eq. 1):

    N(y; b) = (y - b_c) / b_size          (per axis: b_size = (b_w, b_h))
    N^-1(n; b) = b_c + n * b_size

Conventions:
    * Pixel coordinates are (x, y) with 0 at the *centre* of the top-left pixel, so the image
      spans [-0.5, W - 0.5] x [-0.5, H - 0.5] (OpenCV's ``warpAffine`` convention).
    * A box is ``(cx, cy, w, h)`` in original-image pixels; it spans
      ``[cx - w/2, cx + w/2] x [cy - h/2, cy + h/2]``, so box-normalised coordinates of points
      inside the box lie in [-0.5, 0.5].
    * The crop is the box resampled to ``input_size x input_size`` pixels; crop pixel ``q`` and
      normalised ``n`` are related by ``q = (n + 0.5) * S - 0.5``.

Functions accept NumPy arrays or torch tensors (any leading batch dimensions) and return the
same type.
"""

from __future__ import annotations

from typing import TypeVar

import cv2
import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def encode(keypoints_px: Array, box: Array) -> Array:
    """Original pixels -> box-normalised coordinates, ``N(y; b)`` (DeepPose §3, Eq. 1).

    Shapes:
        keypoints_px: (..., K, 2) pixels. box: (..., 4) ``(cx, cy, w, h)`` pixels.
        returns keypoints_norm: (..., K, 2), in [-0.5, 0.5] inside the box.
    """
    return (keypoints_px - box[..., None, :2]) / box[..., None, 2:]


def decode(keypoints_norm: Array, box: Array) -> Array:
    """Box-normalised coordinates -> original pixels, ``N^-1(n; b)``; inverse of :func:`encode`.

    Shapes:
        keypoints_norm: (..., K, 2). box: (..., 4) ``(cx, cy, w, h)`` pixels.
        returns keypoints_px: (..., K, 2) pixels.
    """
    return box[..., None, :2] + keypoints_norm * box[..., None, 2:]


def norm_to_crop_px(keypoints_norm: Array, input_size: int) -> Array:
    """Box-normalised coordinates -> pixels of the ``input_size`` crop: ``(n + 0.5) S - 0.5``."""
    return (keypoints_norm + 0.5) * input_size - 0.5


def crop_px_to_norm(keypoints_crop_px: Array, input_size: int) -> Array:
    """Pixels of the ``input_size`` crop -> box-normalised coordinates; inverse of the above."""
    return (keypoints_crop_px + 0.5) / input_size - 0.5


def crop_matrix(box: np.ndarray, input_size: int) -> np.ndarray:
    """Affine map from original-image pixels to crop pixels, for ``cv2.warpAffine``.

    ``q = (p - b_c) * S / b_size + (S - 1) / 2`` per axis.

    Shapes:
        box: (4,) ``(cx, cy, w, h)`` pixels. returns (2, 3) float64.
    """
    cx, cy, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive width and height, got (w, h) = ({w}, {h})")
    sx, sy = input_size / w, input_size / h
    centre = (input_size - 1) / 2
    return np.array([[sx, 0.0, centre - cx * sx], [0.0, sy, centre - cy * sy]])


def crop_image(image: np.ndarray, box: np.ndarray, input_size: int) -> np.ndarray:
    """Resample the box of an image to an ``input_size`` square; outside the image is black.

    Shapes:
        image: (H, W, 3) uint8. box: (4,) ``(cx, cy, w, h)`` pixels.
        returns (input_size, input_size, 3) uint8.
    """
    matrix = crop_matrix(box, input_size)
    return cv2.warpAffine(
        image,
        matrix,
        (input_size, input_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def whole_image_box(width: int, height: int) -> np.ndarray:
    """Square box centred on the image, side ``max(width, height)``: the whole image, padded.

    DeepPose's stage-1 setting for LSP-style data: the network sees the full image. The box is
    square so that resizing to the network input keeps the aspect ratio.

    Shapes:
        returns (4,) float32 ``(cx, cy, side, side)`` pixels.
    """
    side = float(max(width, height))
    return np.array([(width - 1) / 2, (height - 1) / 2, side, side], dtype=np.float32)


def torso_box_to_person_box(torsobox: np.ndarray, scale: float) -> np.ndarray:
    """Square person box from a FLIC torso box ``(x1, y1, x2, y2)``: centred on the torso box,
    side ``scale x`` the torso-box height. ``scale = 3`` keeps 99.9 % of FLIC's labelled joints
    inside the box (measured on the official ``examples.mat``).

    Shapes:
        torsobox: (..., 4) pixels. returns (..., 4) float32 ``(cx, cy, side, side)``.
    """
    torsobox = np.asarray(torsobox, dtype=np.float32)
    cx = (torsobox[..., 0] + torsobox[..., 2]) / 2
    cy = (torsobox[..., 1] + torsobox[..., 3]) / 2
    side = scale * (torsobox[..., 3] - torsobox[..., 1])
    return np.stack([cx, cy, side, side], axis=-1).astype(np.float32)
