"""HeatmapHead: the pyramid levels it merges, its output stride, a stride the trunk lacks."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import HeatmapHead, HeatmapPose, MultiResolutionTrunk, ResNetTrunk

K = LSP_SKELETON.num_joints


def test_heads_on_a_pretrained_style_pyramid_merge_the_chosen_strides() -> None:
    head = HeatmapHead(ResNetTrunk(), K, output_stride=8, levels=2, width=16)
    assert head.levels == [1, 2] and head.output_stride == 8 and head.channels == [128, 256]
    model = HeatmapPose(
        ResNetTrunk(), LSP_SKELETON, head=lambda t, k: HeatmapHead(t, k, output_stride=8)
    )
    out = model.eval().heatmaps(torch.rand(1, 3, 64, 64))
    assert out["coarse"].shape == (1, K, 8, 8)
    assert [m.shape[-1] for m in out["maps"]] == [8, 4, 2]


def test_an_output_stride_the_trunk_lacks_is_refused_naming_its_strides() -> None:
    with pytest.raises(ValueError, match=r"output_stride=2: .* strides \[4, 8, 16\] only"):
        HeatmapHead(MultiResolutionTrunk(), K, output_stride=2)
