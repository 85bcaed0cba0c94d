"""The coarse heat-map head of Tompson et al. 2015 (§3, Fig. 3): a trunk's pyramid maps merged
at the output stride, then one heat-map per joint."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from lightning_pose.models.trunks import Trunk, feature_pyramid_levels


class HeatmapHead(nn.Module):
    """Merge a trunk's pyramid maps at the output stride and predict one heat-map per joint
    (Tompson et al. 2015, §3, Fig. 3).

    Each selected map (strides s, 2s, ... from ``output_stride``) is projected to ``width``
    channels by a 1x1 convolution (the identity where it already has them, as the banks of
    :class:`~lightning_pose.models.trunks.MultiResolutionTrunk` do), bilinearly upsampled to
    the finest map and summed (the paper's "upsample and add"); then SpatialDropout, 1x1 conv
    (``hidden_channels``) - ReLU - 1x1 conv (K). The output is linear (MSE target in [0, 1]).

    Args:
        trunk: read for its pyramid strides and channels.
        num_joints: K.
        output_stride: input pixels per heat-map cell; None = the trunk's finest map.
        levels: how many pyramid maps to merge (the paper: 3 resolutions).
        width: channels of the merged map; None = the maps' own width if they all share it,
            else 128.
        hidden_channels: width of the first 1x1 convolution.
        dropout: SpatialDropout probability (whole channels are dropped, §3.1).

    Shapes:
        forward: maps, the trunk's selected pyramid maps (:attr:`levels`) ->
        heatmaps (B, K, S / s, S / s).

    Raises:
        ValueError: no pyramid map at ``output_stride``, or dropout outside [0, 1).
    """

    def __init__(
        self,
        trunk: Trunk,
        num_joints: int,
        output_stride: int | None = None,
        levels: int = 3,
        width: int | None = None,
        hidden_channels: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"heatmap head dropout must be in [0, 1), got {dropout!r}")
        self.levels = feature_pyramid_levels(trunk, output_stride, levels)
        self.output_stride = trunk.pyramid_strides[self.levels[0]]
        channels = [trunk.pyramid_channels[i] for i in self.levels]
        if width is None:
            width = channels[0] if len(set(channels)) == 1 else 128
        self.channels = channels
        self.width = width
        self.lateral = nn.ModuleList(
            nn.Identity() if c == width else nn.Conv2d(c, width, 1) for c in channels
        )
        self.dropout = nn.Dropout2d(dropout)
        self.conv = nn.Conv2d(width, hidden_channels, 1)
        self.out = nn.Conv2d(hidden_channels, num_joints, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def select(self, pyramid: Sequence[Tensor]) -> list[Tensor]:
        """The maps this head reads, finest first, from the trunk's whole pyramid."""
        return [pyramid[i] for i in self.levels]

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        size = maps[0].shape[-2:]
        merged = self.lateral[0](maps[0])
        for lateral, x in zip(self.lateral[1:], maps[1:], strict=True):
            merged = merged + F.interpolate(
                lateral(x), size=size, mode="bilinear", align_corners=False
            )
        return self.out(F.relu(self.conv(self.dropout(merged))))  # (B, K, h, w)


HeatmapHeadFactory = Callable[[Trunk, int], HeatmapHead]
