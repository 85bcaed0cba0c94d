"""Sliding-window labels: does window j of a grid over the box contain a joint, or the centre
of a body part? (Li, Liu & Chan 2014, "Heterogeneous Multi-task Learning for Human Pose
Estimation with Deep Convolutional Neural Network", §3: the joint-point and body-part detection
tasks, one binary classifier per joint or part and window.)

The windows are the cells of a ``(G_x, G_y)`` grid laid over the box, with the mapping of
:mod:`lightning_pose.codecs.grid` (the one the heatmap codec uses): a box-normalised point n sits
at grid coordinate ``g = (n + 0.5) G - 0.5`` and window j spans ``g`` in ``[j - 0.5, j + 0.5)``
(box fraction ``[j / G, (j + 1) / G)``), the last window also taking its far edge ``g = G - 0.5``.
So a point is in window ``floor(g + 0.5)``: the cell it falls in. On an S-pixel input window j
covers input pixels ``q`` in ``[j S / G - 0.5, (j + 1) S / G - 0.5)`` (pixel-centre convention).
The windows tile the box without overlap, so each point is in exactly one window.

Labelling rule (Li, Liu & Chan 2014 §3):

* joint-point detection: window j of joint k is positive iff joint k lies in it;
* body-part detection: a body part is a limb of the skeleton (``Skeleton.limbs``: a stick
  between two end points, each the mean of one or more joints), and window j of part l is
  positive iff the part's centre, the midpoint of its two end points, lies in it.

Weights: a joint (part) whose weight is 0, or whose coordinates are not finite, gets weight 0 and
all-zero labels (NaN placeholders never reach a label). A part's weight is 1 iff every joint of
both ends has a non-zero weight. A weighted point that is finite but off the grid keeps its
weight with all-zero labels: it is known to be in no window, so every window is a true negative
(with ``visible`` as the weight, which the models use, this does not happen: a visible joint is
inside the crop, hence on the grid, and so is the midpoint of two of them).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pose.codecs.grid import inside_grid, norm_to_grid
from lightning_pose.codecs.segments import limb_endpoints


class WindowCodec:
    """Points -> binary labels of a ``(G_x, G_y)`` grid of windows over the box.

    Args:
        grid: ``(G_x, G_y)`` windows along x and y.

    Raises:
        ValueError: a grid that is not two positive ints.
    """

    def __init__(self, grid: tuple[int, int]) -> None:
        if len(grid) != 2 or not all(isinstance(n, int) and n > 0 for n in grid):
            raise ValueError(f"WindowCodec: grid must be (G_x, G_y) positive ints, got {grid}")
        self.grid = (int(grid[0]), int(grid[1]))

    def window_of(self, points_norm: Tensor) -> tuple[Tensor, Tensor]:
        """The window each point falls in, and whether it falls in any.

        Shapes:
            points_norm: (..., 2) box-normalised (x, y).
            returns window (..., 2) long (column, row), clamped onto the grid, and on_grid
            (...,) bool (finite and inside ``[-0.5, G - 0.5]`` on both axes).
        """
        grid = norm_to_grid(points_norm, self.grid)  # (..., 2) cells
        on_grid = torch.isfinite(grid).all(dim=-1) & inside_grid(grid, self.grid)
        grid = torch.where(on_grid[..., None], grid, torch.zeros_like(grid))  # no NaN below
        limit = torch.tensor(self.grid, device=grid.device) - 1  # (2,)
        window = torch.floor(grid + 0.5).long().clamp(min=0).minimum(limit)  # (..., 2)
        return window, on_grid

    def encode_points(self, points_norm: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
        """Window labels of points (joints, or part centres) and their target weights.

        Shapes:
            points_norm: (B, N, 2) float, box-normalised (x, y).
            weight: (B, N) bool or float, e.g. ``visible``.
            returns labels (B, N, G_y, G_x) in {0, 1}, at most one 1 per point, and
            target_weight (B, N), both of the dtype of ``points_norm``.

        Raises:
            ValueError: the shapes or dtypes are off.
        """
        if points_norm.ndim != 3 or points_norm.shape[-1] != 2:
            raise ValueError(
                f"WindowCodec: points must be (B, N, 2), got {tuple(points_norm.shape)}"
            )
        if not points_norm.is_floating_point():
            raise ValueError(f"WindowCodec: points must be floating point, got {points_norm.dtype}")
        if weight.shape != points_norm.shape[:2]:
            raise ValueError(
                f"WindowCodec: weight must be (B, N) = {tuple(points_norm.shape[:2])}, got "
                f"{tuple(weight.shape)}"
            )
        gx, gy = self.grid
        dtype = points_norm.dtype
        window, on_grid = self.window_of(points_norm)  # (B, N, 2), (B, N)
        finite = torch.isfinite(points_norm).all(dim=-1)  # (B, N)
        weighted = finite & (weight != 0)  # (B, N)
        target_weight = torch.where(
            weighted, weight.to(dtype), torch.zeros_like(weight, dtype=dtype)
        )
        flat = window[..., 1] * gx + window[..., 0]  # (B, N) row-major window index
        labels = torch.nn.functional.one_hot(flat, gx * gy).to(dtype)  # (B, N, G_y * G_x)
        labels = labels * (weighted & on_grid)[..., None].to(dtype)
        return labels.view(*flat.shape, gy, gx), target_weight  # (B, N, G_y, G_x), (B, N)

    def encode_parts(
        self, keypoints_norm: Tensor, labelled: Tensor, limb_weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Window labels of body parts: the windows holding each limb's centre.

        Shapes:
            keypoints_norm: (B, K, 2) box-normalised. labelled: (B, K) bool, which joints count
            (the models pass ``visible``). limb_weights: (L, 2, K)
            (``Skeleton.limb_endpoint_weights()``).
            returns labels (B, L, G_y, G_x) and target_weight (B, L), 1 where every joint of
            both ends is counted.
        """
        centres, counted = self.part_centres(keypoints_norm, labelled, limb_weights)
        return self.encode_points(centres, counted)

    @staticmethod
    def part_centres(
        keypoints_norm: Tensor, labelled: Tensor, limb_weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Centre of each body part: the midpoint of its two end points.

        Shapes:
            keypoints_norm: (B, K, 2). labelled: (B, K) bool. limb_weights: (L, 2, K).
            returns centres (B, L, 2) (0 where not labelled) and labelled (B, L) bool.
        """
        endpoints, limb_labelled = limb_endpoints(keypoints_norm, labelled, limb_weights)
        return endpoints.mean(dim=2), limb_labelled  # (B, L, 2), (B, L)
