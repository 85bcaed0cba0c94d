"""Cropping: a box of an original image (OpenCV), and boxes of a batched view or feature map
(torch, on the device).

Both keep the pixel-centre convention of :mod:`lightning_pose.codecs.box`: output pixel j of an
S-pixel crop samples the box at normalised ``(j + 0.5) / S - 0.5`` of its side
(:func:`lightning_pose.codecs.grid.grid_to_norm`). Parts of a box outside the source read as 0.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lightning_pose.codecs.grid import grid_to_norm


def crop_matrix(box: np.ndarray, input_size: int) -> np.ndarray:
    """Affine map from original-image pixels to crop pixels, for ``cv2.warpAffine``.

    ``q = (p - b_c) * S / b_size + (S - 1) / 2`` per axis, i.e. ``norm_to_grid(encode(p), S)``.

    Shapes:
        box: (4,) ``(cx, cy, w, h)`` pixels. returns (2, 3) float64.

    Raises:
        ValueError: the box has a width or height <= 0.
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
    return cv2.warpAffine(
        image,
        crop_matrix(box, input_size),
        (input_size, input_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def crop_windows(source: torch.Tensor, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """Resample each box of each source map to ``output_size`` squared (bilinear).

    The source is a view of the box frame at any resolution: an image crop (the DeepPose
    cascade's sub-images, §3.2) or a feature map of any channel count (the feature crops of
    Tompson et al. 2015 §4). Box-normalised (-0.5, -0.5) is its top-left corner, (0.5, 0.5)
    its bottom-right. Output pixel j samples the box at ``grid_to_norm(j, output_size)`` of its
    side. Parts of a box outside the source read as 0, so a box at the border keeps its
    geometry: it is neither shifted nor shrunk.

    Shapes:
        source: (B, C, H, W). boxes: (B, M, 4) ``(cx, cy, w, h)`` box-normalised.
        returns (B * M, C, output_size, output_size), image-major (b * M + m).
    """
    B, M, _ = boxes.shape
    S = output_size
    u = grid_to_norm(torch.arange(S, device=boxes.device, dtype=boxes.dtype), S)  # (S,)
    x = boxes[..., 0, None] + u * boxes[..., 2, None]  # (B, M, S)
    y = boxes[..., 1, None] + u * boxes[..., 3, None]  # (B, M, S)
    # grid_sample(align_corners=False) has the source edges at -1 and 1: grid = 2 * normalised.
    grid = torch.stack(
        [2 * x[:, :, None, :].expand(B, M, S, S), 2 * y[:, :, :, None].expand(B, M, S, S)], -1
    )  # (B, M, S, S, 2): (x, y) of output pixel (row, col) of crop m
    out = F.grid_sample(
        source,
        grid.reshape(B, M * S, S, 2).to(source.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # (B, C, M*S, S): the M crops stacked vertically, the source is not copied
    return out.view(B, -1, M, S, S).transpose(1, 2).reshape(B * M, -1, S, S)
