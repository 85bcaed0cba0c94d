"""Grid mapping: the pixel-centre convention by known answers, for inputs, heatmaps, windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from lightning_pose.codecs.grid import cell_centres, grid_to_norm, inside_grid, norm_to_grid


def test_input_grid_edges_and_centre() -> None:
    # Normalised -0.5 is the left edge of pixel 0 (x = -0.5); +0.5 the right edge of pixel S-1.
    S = 4
    norm = np.array([[-0.5, 0.5], [0.0, -0.375]])
    np.testing.assert_allclose(norm_to_grid(norm, S), [[-0.5, 3.5], [1.5, 0.0]], rtol=0, atol=0)
    np.testing.assert_allclose(grid_to_norm(norm_to_grid(norm, S), S), norm, rtol=0, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_heatmap_cell_centre_is_input_pixel_js_plus_half_stride(stride: int) -> None:
    # Cell j of a stride-s heatmap over a 64-px input covers input pixels j s ... j s + s - 1;
    # its centre is input pixel j s + (s - 1) / 2.
    S = 64
    j = torch.arange(S // stride, dtype=torch.float64)
    q = j * stride + (stride - 1) / 2
    cells = norm_to_grid(grid_to_norm(q, S), S // stride)
    assert_close(cells, j, rtol=0, atol=1e-12)


def test_non_square_grid() -> None:
    point = torch.tensor([0.0, 0.25])
    assert_close(norm_to_grid(point, (6, 4)), torch.tensor([2.5, 2.5]), rtol=0, atol=0)


def test_cell_centres_layout() -> None:
    centres = cell_centres((3, 2))  # (G_y=2, G_x=3, 2)
    assert centres.shape == (2, 3, 2)
    assert_close(centres[1, 2], torch.tensor([1 / 3, 0.25]), rtol=0, atol=1e-6)
    assert_close(centres[0, 0], torch.tensor([-1 / 3, -0.25]), rtol=0, atol=1e-6)


def test_inside_grid() -> None:
    points = torch.tensor([[-0.5, 0.0], [3.5, 3.5], [-0.51, 1.0], [1.0, 3.6]])
    assert inside_grid(points, 4).tolist() == [True, True, False, False]
