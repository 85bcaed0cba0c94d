"""Integral regression: a heat-map's joint position as its expectation under the softmax of the
map (Sun, Xiao, Liang, Wei, "Integral Human Pose Regression", ECCV 2018, §3).

``J = sum_p p * softmax(H)(p)`` over the map's cells p: differentiable, so the network is trained
on the coordinates themselves (an L1 loss) and the decoded position is continuous, without
the arg-max's quantisation to a cell or a sub-cell step (compare
:class:`~lightning_pose.codecs.heatmap.HeatmapCodec`'s DARK). Cells are placed by
:func:`~lightning_pose.codecs.grid.cell_centres` (the package's pixel-centre grid over the box),
so the expectation is box-normalised like every other estimate.
"""

from __future__ import annotations

from torch import Tensor

from lightning_pose.codecs.grid import cell_centres


def soft_argmax(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Expected position under each map's softmax, and that softmax's peak probability.

    Computed in float32 whatever the maps' dtype (a bf16 softmax over 1,600 cells would round
    the weights). The expectation lies inside the cells' centres, so a joint on the box's
    outermost half cell is pulled in by up to half a cell.

    Shapes:
        heatmaps: (B, K, H, W) float, unnormalised (logits).
        returns keypoints_norm (B, K, 2) box-normalised (x, y) and scores (B, K) in (0, 1].

    Raises:
        ValueError: not (B, K, H, W) floating point.
    """
    if heatmaps.ndim != 4 or not heatmaps.is_floating_point():
        raise ValueError(
            "soft_argmax: heatmaps must be floating point (B, K, H, W), got "
            f"{tuple(heatmaps.shape)} {heatmaps.dtype}"
        )
    height, width = heatmaps.shape[-2:]
    prob = heatmaps.float().flatten(2).softmax(dim=-1)  # (B, K, H*W)
    centres = cell_centres((width, height), device=heatmaps.device).view(-1, 2)  # (H*W, 2)
    return prob @ centres, prob.amax(dim=-1)
