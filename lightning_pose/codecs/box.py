"""The box frame: original-image pixels <-> box-normalised coordinates (DeepPose §3, Eq. 1).

    N(y; b) = (y - b_c) / b_size          (per axis: b_size = (b_w, b_h))
    N^-1(n; b) = b_c + n * b_size

Conventions:
    * Pixel coordinates are (x, y) with 0 at the *centre* of the top-left pixel, so an image
      spans [-0.5, W - 0.5] x [-0.5, H - 0.5] (OpenCV's ``warpAffine`` convention).
    * A box is ``(cx, cy, w, h)``; it spans ``[cx - w/2, cx + w/2] x [cy - h/2, cy + h/2]``, so
      box-normalised coordinates of points inside it lie in [-0.5, 0.5].
    * One box per sample (:func:`encode`, :func:`decode`: ``box (..., 4)`` for points
      ``(..., K, 2)``) or one box per point (:func:`encode_in_boxes`, :func:`decode_in_boxes`:
      ``boxes (..., M, 4)`` for points ``(..., M, 2)``, e.g. the DeepPose cascade's sub-image
      around each joint, §3.2 Eq. 6, whose boxes are themselves in the stage-1 box frame).

Functions accept NumPy arrays or torch tensors (any leading batch dimensions) and return the
same type.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def encode_in_boxes(points: Array, boxes: Array) -> Array:
    """Points -> the normalised frame of their own boxes, ``N(y_m; b_m)`` (DeepPose Eq. 1, 8).

    Shapes:
        points: (..., M, 2). boxes: (..., M, 4) ``(cx, cy, w, h)`` in the points' frame.
        returns (..., M, 2), in [-0.5, 0.5] inside each box.
    """
    return (points - boxes[..., :2]) / boxes[..., 2:]


def decode_in_boxes(points_norm: Array, boxes: Array) -> Array:
    """Inverse of :func:`encode_in_boxes`: ``N^-1(n_m; b_m) = b_c + n * b_size`` (Eq. 6).

    Shapes:
        points_norm: (..., M, 2). boxes: (..., M, 4). returns (..., M, 2).
    """
    return boxes[..., :2] + points_norm * boxes[..., 2:]


def encode(keypoints_px: Array, box: Array) -> Array:
    """Original pixels -> box-normalised coordinates, ``N(y; b)`` (DeepPose §3, Eq. 1).

    Shapes:
        keypoints_px: (..., K, 2) pixels. box: (..., 4) ``(cx, cy, w, h)`` pixels.
        returns keypoints_norm: (..., K, 2), in [-0.5, 0.5] inside the box.
    """
    return encode_in_boxes(keypoints_px, box[..., None, :])


def decode(keypoints_norm: Array, box: Array) -> Array:
    """Box-normalised coordinates -> original pixels, ``N^-1(n; b)``; inverse of :func:`encode`.

    Shapes:
        keypoints_norm: (..., K, 2). box: (..., 4) ``(cx, cy, w, h)`` pixels.
        returns keypoints_px: (..., K, 2) pixels.
    """
    return decode_in_boxes(keypoints_norm, box[..., None, :])


def square_boxes(centres: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Square boxes ``(cx, cy, side, side)`` around points, one side per sample.

    DeepPose §3.2, Eq. 6: the stage-s sub-image of joint i is ``(y_i^{s-1}, sigma * diam)``.

    Shapes:
        centres: (B, M, 2). side: (B,). returns (B, M, 4).
    """
    side = side[:, None, None].expand(*centres.shape[:2], 1)  # (B, M, 1)
    return torch.cat([centres, side, side], dim=-1)


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
