"""Gaussian target heatmaps and their decoding, torch-batched (Tompson et al. 2015 §3).

One object encodes training targets and decodes predictions (the codec idea of mmpose), so the
heatmap convention has one home. Every coordinate conversion goes through
:mod:`lightning_pose.codecs.grid`: a heatmap of ``(W, H)`` cells is a grid over the box, and a
box-normalised keypoint n sits at cell coordinate

    g = (n + 0.5) * G - 0.5            (G = W for x, H for y; 0 = centre of the first cell)

For a heatmap at stride s over an S-pixel input (G = S / s) this is ``h = (q + 0.5) / s - 0.5``
between input pixel q and cell h; cell j's centre is input pixel ``j s + (s - 1) / 2``. (The
``q / s`` mapping of mmpose's codecs is off by ``(s - 1) / 2`` input pixels against this
pixel-centre convention and is not used.) A horizontal flip of the input maps box-normalised x
to -x exactly, hence cell j to ``W - 1 - j``: mirrored heatmaps need no shift.

Encoding (Tompson et al. 2015 §3: a 2-D Gaussian of constant sigma centred on each joint, the
target of an MSE loss): the unnormalised Gaussian ``exp(-|x - g|^2 / (2 sigma^2))`` centred at the
exact sub-cell position g (peak 1 at g, not rounded to a cell), built separably as the product
of a 1-D Gaussian along x and one along y.

Decoding: the argmax cell, then a sub-cell step from a 3-point Gaussian fit on the log of the map,
separately along x and y -- the Taylor step of DARK (Zhang et al. 2020, "Distribution-Aware
Coordinate Representation for Human Pose Estimation", §3.2, Eq. 6-7) in separable 1-D form. The
parabola through ``l = log h`` at ``argmax - 1, argmax, argmax + 1`` peaks at offset

    d = 0.5 * (l(-1) - l(+1)) / (l(-1) - 2 l(0) + l(+1))

which is exact for an untruncated Gaussian target (its log is a parabola).

``subpixel`` picks the sub-cell step, so that its worth can be measured on one checkpoint
(docs/RESULTS.md, "Levers"): ``"dark"`` (the step above, the default), ``"quarter"`` (a quarter
cell towards the larger neighbour, the heuristic of Newell et al. 2016's Stacked Hourglass code
and SimpleBaseline, Xiao et al. 2018) or ``"none"`` (the argmax cell's centre).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pose.codecs.grid import grid_to_norm, inside_grid, norm_to_grid

_LOG_EPS = 1e-10  # heatmap values are clamped to this before the log of the sub-cell step
SUBPIXEL = ("dark", "quarter", "none")


def _subcell_offset(left: Tensor, centre: Tensor, right: Tensor, has_both: Tensor) -> Tensor:
    """1-D sub-cell offset of the peak: vertex of the parabola through the logs of 3 values.

    DARK (Zhang et al. 2020) §3.2 Eq. 6-7, one axis: ``d = 0.5 (l_-1 - l_+1) / (l_-1 - 2 l_0 +
    l_+1)``, clamped to [-0.5, 0.5]; 0 where a neighbour is off the map (``has_both`` False) or
    the parabola has no maximum (denominator >= 0).

    Shapes:
        left, centre, right: (B, K) heatmap values. has_both: (B, K) bool. returns (B, K) cells.
    """
    lm, l0, lp = (v.clamp_min(_LOG_EPS).log() for v in (left, centre, right))  # (B, K) each
    denom = lm - 2 * l0 + lp  # (B, K): twice the parabola's curvature
    fit = has_both & (denom < 0)
    safe = torch.where(fit, denom, -torch.ones_like(denom))  # no 0/0 even where masked out
    offset = (0.5 * (lm - lp) / safe).clamp(-0.5, 0.5)
    return torch.where(fit, offset, torch.zeros_like(offset))


def _quarter_offset(left: Tensor, right: Tensor, has_both: Tensor) -> Tensor:
    """1-D offset of a quarter cell towards the larger neighbour (0 on a tie or the border).

    Shapes:
        left, right: (B, K) heatmap values. has_both: (B, K) bool. returns (B, K) cells.
    """
    return torch.where(has_both, 0.25 * torch.sign(right - left), torch.zeros_like(left))


class HeatmapCodec:
    """Keypoints <-> Gaussian heatmaps on a grid over the box (Tompson et al. 2015 §3).

    Args:
        sigma: standard deviation of the target Gaussian, in heatmap cells.
        subpixel: the decoder's sub-cell step, one of :data:`SUBPIXEL` (module docstring).

    Raises:
        ValueError: sigma not a finite number > 0, or an unknown ``subpixel``.
    """

    def __init__(self, sigma: float = 2.0, subpixel: str = "dark") -> None:
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"HeatmapCodec: sigma must be a finite number > 0 cells, got {sigma}")
        if subpixel not in SUBPIXEL:
            raise ValueError(f"HeatmapCodec: subpixel must be one of {SUBPIXEL}, got {subpixel!r}")
        self.sigma = float(sigma)
        self.subpixel = subpixel

    def encode(
        self, keypoints_norm: Tensor, weight: Tensor, size: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """Target heatmaps and per-joint target weights.

        A joint gets weight 0 and an all-zero heatmap where its weight is 0, its coordinates are
        not finite (NaN placeholders are never propagated), or its centre g lies off the grid
        ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (not in the view).

        Shapes:
            keypoints_norm: (B, K, 2) float, box-normalised (x, y).
            weight: (B, K) bool or float, e.g. ``visible``.
            size: (W, H) heatmap cells.
            returns heatmaps (B, K, H, W) in [0, 1] and target_weight (B, K), both of the dtype
            of ``keypoints_norm``.
        """
        if keypoints_norm.ndim != 3 or keypoints_norm.shape[-1] != 2:
            raise ValueError(
                f"HeatmapCodec.encode: keypoints_norm must be (B, K, 2), got "
                f"{tuple(keypoints_norm.shape)}"
            )
        if not keypoints_norm.is_floating_point():
            raise ValueError(
                f"HeatmapCodec.encode: keypoints_norm must be floating point, got "
                f"{keypoints_norm.dtype}"
            )
        if weight.shape != keypoints_norm.shape[:2]:
            raise ValueError(
                f"HeatmapCodec.encode: weight must be (B, K) = {tuple(keypoints_norm.shape[:2])}, "
                f"got {tuple(weight.shape)}"
            )
        if len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size):
            raise ValueError(f"HeatmapCodec.encode: size must be (W, H) positive ints, got {size}")
        width, height = size
        dtype, device = keypoints_norm.dtype, keypoints_norm.device

        grid = norm_to_grid(keypoints_norm, (width, height))  # (B, K, 2) cells
        finite = torch.isfinite(grid).all(dim=-1)  # (B, K)
        valid = finite & inside_grid(grid, (width, height)) & (weight != 0)  # (B, K)
        target_weight = torch.where(valid, weight.to(dtype), torch.zeros_like(grid[..., 0]))
        grid = torch.where(valid[..., None], grid, torch.zeros_like(grid))  # no NaN below

        xs = torch.arange(width, device=device, dtype=dtype)  # (W,)
        ys = torch.arange(height, device=device, dtype=dtype)  # (H,)
        two_var = 2 * self.sigma**2
        gauss_x = torch.exp(-((xs - grid[..., 0:1]) ** 2) / two_var)  # (B, K, W)
        gauss_y = torch.exp(-((ys - grid[..., 1:2]) ** 2) / two_var)  # (B, K, H)
        heatmaps = gauss_y[..., :, None] * gauss_x[..., None, :]  # (B, K, H, W)
        heatmaps = heatmaps * valid[..., None, None].to(dtype)
        return heatmaps, target_weight

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Keypoints from heatmaps: argmax cell plus the separable log-Gaussian sub-cell step
        (or the step ``subpixel`` names).

        See the module docstring (DARK, Zhang et al. 2020 §3.2, in 1-D form per axis). On an axis
        where the argmax is on the border of the map the offset is 0: the cell's centre.

        Shapes:
            heatmaps: (B, K, H, W) float.
            returns keypoints_norm (B, K, 2) box-normalised (x, y) and scores (B, K), the
            maximum of each heatmap.
        """
        if heatmaps.ndim != 4 or heatmaps.shape[-1] < 1 or heatmaps.shape[-2] < 1:
            raise ValueError(
                f"HeatmapCodec.decode: heatmaps must be (B, K, H, W) with H, W >= 1, got "
                f"{tuple(heatmaps.shape)}"
            )
        if not heatmaps.is_floating_point():
            raise ValueError(
                f"HeatmapCodec.decode: heatmaps must be floating point, got {heatmaps.dtype}"
            )
        height, width = heatmaps.shape[-2:]
        flat = heatmaps.flatten(2)  # (B, K, H*W)
        scores, index = flat.max(dim=-1)  # (B, K), (B, K)
        iy, ix = index // width, index % width  # (B, K) each

        def at(row: Tensor, col: Tensor) -> Tensor:  # (B, K) values at clamped cells
            row, col = row.clamp(0, height - 1), col.clamp(0, width - 1)
            return flat.gather(-1, (row * width + col)[..., None])[..., 0]

        inner_x, inner_y = (ix >= 1) & (ix <= width - 2), (iy >= 1) & (iy <= height - 2)
        left, right, up, down = at(iy, ix - 1), at(iy, ix + 1), at(iy - 1, ix), at(iy + 1, ix)
        if self.subpixel == "dark":
            dx = _subcell_offset(left, scores, right, inner_x)  # (B, K)
            dy = _subcell_offset(up, scores, down, inner_y)  # (B, K)
        elif self.subpixel == "quarter":
            dx, dy = _quarter_offset(left, right, inner_x), _quarter_offset(up, down, inner_y)
        else:
            dx = dy = torch.zeros_like(scores)
        grid = torch.stack([ix.to(heatmaps.dtype) + dx, iy.to(heatmaps.dtype) + dy], dim=-1)
        return grid_to_norm(grid, (width, height)), scores  # (B, K, 2), (B, K)

    def flip_heatmaps(self, heatmaps: Tensor, flip_permutation: list[int]) -> Tensor:
        """Heatmaps of a horizontally flipped input -> the original frame.

        Flips the W axis and permutes joints: output joint k is input joint
        ``flip_permutation[k]`` (left/right swap; an involution). With the pixel-centre grid,
        flipping the input maps cell j to ``W - 1 - j`` exactly, so no shift is needed.

        Shapes:
            heatmaps: (B, K, H, W). flip_permutation: K joint indices. returns (B, K, H, W).
        """
        if heatmaps.ndim != 4:
            raise ValueError(
                f"HeatmapCodec.flip_heatmaps: heatmaps must be (B, K, H, W), got "
                f"{tuple(heatmaps.shape)}"
            )
        num_joints = heatmaps.shape[1]
        if sorted(flip_permutation) != list(range(num_joints)):
            raise ValueError(
                f"HeatmapCodec.flip_heatmaps: flip_permutation must be a permutation of "
                f"0..{num_joints - 1} (K = {num_joints} joints), got {flip_permutation}"
            )
        order = torch.as_tensor(flip_permutation, device=heatmaps.device, dtype=torch.long)
        return heatmaps.index_select(1, order).flip(-1)
