"""Crops of batched views and feature maps (DeepPose §3.2 sub-images, Tompson et al. §4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from lightning_pose.codecs.crop import crop_matrix, crop_windows
from lightning_pose.codecs.grid import grid_to_norm


def test_crop_window_centres_the_joint() -> None:
    # A 1-pixel marker at pixel (x=12, y=4) of a 16x16 view; a box centred on it (side 7/16,
    # odd crop of 7 px) puts it at the crop's centre pixel (3, 3).
    image = torch.zeros(1, 3, 16, 16)
    image[0, :, 4, 12] = 1.0
    centre = grid_to_norm(torch.tensor([12.0, 4.0]), 16)
    boxes = torch.cat([centre, torch.tensor([7 / 16, 7 / 16])])[None, None]  # (1, 1, 4)
    crop = crop_windows(image, boxes, 7)  # (1, 3, 7, 7)
    assert crop.shape == (1, 3, 7, 7)
    expected = torch.zeros(7, 7)
    expected[3, 3] = 1.0
    assert_close(crop[0, 0], expected, rtol=0, atol=1e-6)


def test_crop_window_at_the_border_is_zero_padded_not_shifted() -> None:
    # Box centred on the top-left pixel: its left/top half lies outside the image and reads 0;
    # the pixel itself stays at the crop centre.
    image = torch.ones(1, 3, 8, 8)
    centre = grid_to_norm(torch.tensor([0.0, 0.0]), 8)
    boxes = torch.cat([centre, torch.tensor([5 / 8, 5 / 8])])[None, None]
    crop = crop_windows(image, boxes, 5)[0, 0]  # (5, 5), one input pixel per output pixel
    expected = torch.zeros(5, 5)
    expected[2:, 2:] = 1.0
    assert_close(crop, expected, rtol=0, atol=1e-6)


def test_crop_of_a_ramp_feature_map_returns_the_expected_values() -> None:
    # Feature map value = 10 x column + row (bilinear sampling reproduces a linear ramp exactly).
    # A 4x4 crop with one cell per feature cell, centred between cells (2.5, 3.5) of a 10x8
    # map (W=10, H=8), reads columns 1..4 and rows 2..5; a half-resolution crop (2x2 of the
    # same box) reads the midpoints.
    H, W = 8, 10
    cols = torch.arange(W, dtype=torch.float64)[None, :].expand(H, W)
    rows = torch.arange(H, dtype=torch.float64)[:, None].expand(H, W)
    fmap = torch.stack([10 * cols + rows, -(10 * cols + rows)])[None]  # (1, C=2, H, W)
    cx = grid_to_norm(torch.tensor(2.5, dtype=torch.float64), W)
    cy = grid_to_norm(torch.tensor(3.5, dtype=torch.float64), H)
    side = torch.tensor([4 / W, 4 / H], dtype=torch.float64)
    boxes = torch.cat([torch.stack([cx, cy]), side])[None, None]  # (1, 1, 4)
    crop = crop_windows(fmap, boxes.double(), 4)[0]  # (2, 4, 4)
    expected = 10 * torch.arange(1.0, 5.0)[None, :] + torch.arange(2.0, 6.0)[:, None]
    assert_close(crop[0], expected.double(), rtol=0, atol=1e-9)
    assert_close(crop[1], -expected.double(), rtol=0, atol=1e-9)
    half = crop_windows(fmap, boxes.double(), 2)[0, 0]  # (2, 2)
    expected_half = 10 * torch.tensor([1.5, 3.5])[None, :] + torch.tensor([2.5, 4.5])[:, None]
    assert_close(half, expected_half.double(), rtol=0, atol=1e-9)


def test_crops_are_image_major() -> None:
    source = torch.arange(2.0)[:, None, None, None].expand(2, 1, 4, 4).contiguous()  # (2,1,4,4)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]]).expand(2, 3, 4)  # (B=2, M=3, 4)
    crops = crop_windows(source, boxes, 2)  # (6, 1, 2, 2)
    assert crops.shape == (6, 1, 2, 2)
    assert crops[:3].eq(0).all() and crops[3:].eq(1).all()


def test_crop_matrix_rejects_empty_box() -> None:
    with pytest.raises(ValueError, match="positive width and height"):
        crop_matrix(np.array([0.0, 0.0, 0.0, 10.0]), 8)
