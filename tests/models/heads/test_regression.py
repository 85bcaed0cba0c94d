"""RegressionHead: pooling kinds, the paper's fully connected layers, start at the box centre."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_pose.models.heads import RegressionHead
from lightning_pose.models.trunks import AlexNetTrunk, ResNetTrunk


def test_avg_head_shapes_and_start_near_the_box_centre() -> None:
    torch.manual_seed(0)
    head = RegressionHead(ResNetTrunk(depth=18), num_joints=14, dropout=0.2).eval()
    out = head(torch.randn(3, 512, 2, 2))
    assert out.shape == (3, 14, 2)
    torch.testing.assert_close(out, torch.zeros_like(out), rtol=0, atol=0.2)
    assert head.linear.in_features == 512
    assert [type(m) for m in head.pool] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout]


def test_alexnet_flatten_head_is_deeppose_f4096_f4096() -> None:
    head = RegressionHead(
        AlexNetTrunk(input_size=220), 14, pooling="flatten", hidden_features=(4096, 4096)
    )
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (256 * 6 * 6, 4096),
        (4096, 4096),
        (4096, 28),
    ]
    assert head(torch.randn(2, 256, 6, 6)).shape == (2, 14, 2)


def test_coordinate_dim_is_a_parameter() -> None:
    head = RegressionHead(ResNetTrunk(depth=18), num_joints=17, coordinate_dim=3)
    assert head(torch.randn(2, 512, 1, 1)).shape == (2, 17, 3)


def test_bad_head_settings_raise() -> None:
    with pytest.raises(ValueError, match="pooling='flatten' needs a trunk with a fixed input_size"):
        RegressionHead(ResNetTrunk(depth=18), 14, pooling="flatten")
    with pytest.raises(ValueError, match="pooling must be 'avg' or 'flatten'"):
        RegressionHead(ResNetTrunk(depth=18), 14, pooling="max")
    with pytest.raises(ValueError, match="dropout"):
        RegressionHead(ResNetTrunk(depth=18), 14, dropout=1.0)
