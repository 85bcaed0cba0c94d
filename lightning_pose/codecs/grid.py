"""Grids laid over the box: box-normalised coordinates <-> cells of a G_x x G_y grid.

One mapping serves every grid over the box: the network input (G = S pixels), a heatmap at
stride s (G = S / s cells), a sliding-window grid (G windows per side). With the pixel-centre
convention of :mod:`lightning_pose.codecs.box`, cell ``j`` of a grid of G cells spans box
fraction ``[j / G, (j + 1) / G]``, so its centre is at normalised ``(j + 0.5) / G - 0.5``:

    g = (n + 0.5) * G - 0.5            n = (g + 0.5) / G - 0.5

For a heatmap at stride s over an S-pixel input this is ``h = (q + 0.5) / s - 0.5`` between
input pixel q and heatmap cell h: cell j covers input pixels ``j s ... j s + s - 1`` and its
centre is input pixel ``j s + (s - 1) / 2`` (not ``j s``, the ``q / s`` mapping of some
codecs, which is off by ``(s - 1) / 2`` input pixels).

Functions accept NumPy arrays or torch tensors of points ``(..., 2)`` (x, y); ``size`` is an
int (square grid) or ``(G_x, G_y)``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
GridSize = int | tuple[int, int]


def _size(points: Array, size: GridSize) -> Array | float:
    if isinstance(size, int):
        return float(size)
    if isinstance(points, torch.Tensor):
        return points.new_tensor([float(size[0]), float(size[1])])
    return np.array([float(size[0]), float(size[1])], dtype=points.dtype)


def norm_to_grid(points_norm: Array, size: GridSize) -> Array:
    """Box-normalised (x, y) -> grid coordinates (cell units, 0 = centre of the first cell).

    Shapes:
        points_norm: (..., 2). returns (..., 2).
    """
    return (points_norm + 0.5) * _size(points_norm, size) - 0.5


def grid_to_norm(points_grid: Array, size: GridSize) -> Array:
    """Grid coordinates -> box-normalised (x, y); inverse of :func:`norm_to_grid`.

    Shapes:
        points_grid: (..., 2). returns (..., 2).
    """
    return (points_grid + 0.5) / _size(points_grid, size) - 0.5


def cell_centres(size: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Box-normalised centre of every cell of a ``(G_x, G_y)`` grid.

    Shapes:
        returns (G_y, G_x, 2) (x, y): ``out[j, i]`` is the centre of column i, row j.
    """
    gx, gy = size
    x = grid_to_norm(torch.arange(gx, device=device, dtype=dtype), gx)  # (G_x,)
    y = grid_to_norm(torch.arange(gy, device=device, dtype=dtype), gy)  # (G_y,)
    return torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)  # (G_y, G_x, 2)


def inside_grid(points_grid: torch.Tensor, size: GridSize) -> torch.Tensor:
    """Whether grid points lie on the grid, ``[-0.5, G - 0.5]`` on both axes.

    Shapes:
        points_grid: (..., 2). returns (...,) bool.
    """
    limit = _size(points_grid, size)
    return ((points_grid >= -0.5) & (points_grid <= limit - 0.5)).all(dim=-1)
