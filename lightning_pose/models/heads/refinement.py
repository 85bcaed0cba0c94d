"""The position refinement of Tompson et al. 2015 (§4, Fig. 7-8): crops of the coarse model's
feature maps around each joint's coarse estimate -> a fine heat-map per joint."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_pose.codecs.crop import crop_windows


class PositionRefinement(nn.Module):
    """The fine model of Tompson et al. 2015, §4 (Fig. 7-8): feature crops -> fine heat-maps.

    Every map the coarse head reads is projected to ``width`` channels by a 1x1 convolution of
    its own; for every joint, a square window (``boxes``) centred on the coarse estimate is
    cropped from each projected map and resampled to ``fine_size`` x ``fine_size`` cells
    (bilinear; the coarser maps are thereby upsampled, as the paper upsamples its coarser
    banks' crops), and the crops are summed; then ``depth`` 3x3 conv - ReLU layers. Cropping
    commutes with a 1x1 convolution (both act linearly per pixel; only the zero padding outside
    the map differs by the bias), so projecting before cropping is projecting each crop, at a
    fraction of the cost: the B x K windows overlap. Everything but the last layer is shared
    across joints (the crops are a batch of B x K windows); the last 1x1 layer has its own
    weights per joint.

    ``fine_size`` is odd so that the window centre is a cell centre: a fine heat-map peaked
    there decodes to an offset of exactly 0.

    Args:
        channels: channels of the cropped maps, finest first.
        num_joints: K.
        fine_size: cells of the fine heat-map per side (odd).
        width: channels of the fine network.
        depth: 3x3 conv - ReLU layers after the merge.

    Shapes:
        forward: maps [(B, C_l, h_l, w_l)], boxes (B, K, 4) ``(cx, cy, side, side)``
        box-normalised -> fine heat-maps (B, K, fine_size, fine_size).
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_joints: int,
        fine_size: int = 17,
        width: int = 32,
        depth: int = 2,
    ) -> None:
        super().__init__()
        if fine_size < 3 or fine_size % 2 == 0:
            raise ValueError(f"refinement fine_size must be odd and >= 3, got {fine_size!r}")
        self.fine_size = fine_size
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        # The per-joint 1x1 layer: joint k's fine map is w_k . features + b_k.
        self.joint_weight = nn.Parameter(torch.randn(num_joints, width) * 1e-3)
        self.joint_bias = nn.Parameter(torch.zeros(num_joints))

    def forward(self, maps: Sequence[Tensor], boxes: Tensor) -> Tensor:
        B, K, _ = boxes.shape
        S = self.fine_size
        x = sum(
            crop_windows(lateral(m), boxes, S)
            for lateral, m in zip(self.lateral, maps, strict=True)
        )  # (B*K, width, S, S)
        x = self.body(F.relu(x)).view(B, K, -1, S, S)
        return (
            torch.einsum("bkcij,kc->bkij", x, self.joint_weight)
            + self.joint_bias[None, :, None, None]
        )


RefinementFactory = Callable[[Sequence[int], int], PositionRefinement]
