"""AlexNetTrunk: the DeepPose convolutions' map sizes (Toshev & Szegedy 2014, §3), pooling kind,
input-size checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_pose.models.trunks import AlexNetTrunk


def test_alexnet_feature_map_sizes_match_deeppose():
    """DeepPose §3: C(55x55x96) - P - C(27x27x256) - P - C(13x13x384) x2 - C(13x13x256) - P."""
    for pooling in ("max", "avg"):
        model = AlexNetTrunk(input_size=220, pooling=pooling)
        assert model.feature_map_shapes() == {
            "conv1": (96, 55, 55),
            "pool1": (96, 27, 27),
            "conv2": (256, 27, 27),
            "pool2": (256, 13, 13),
            "conv3": (384, 13, 13),
            "conv4": (384, 13, 13),
            "conv5": (256, 13, 13),
            "pool5": (256, 6, 6),
        }


def test_alexnet_pooling_type_is_used():
    max_model = AlexNetTrunk(pooling="max")
    avg_model = AlexNetTrunk(pooling="avg")
    pools = [m for m in max_model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3
    assert not any(isinstance(m, nn.AvgPool2d) for m in max_model.features)
    assert len([m for m in avg_model.features if isinstance(m, nn.AvgPool2d)]) == 3
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg_model.features)


def test_alexnet_other_input_size():
    model = AlexNetTrunk(input_size=128).eval()
    assert model(torch.zeros(2, 3, 128, 128)).shape == (2, 256, 3, 3)


def test_alexnet_wrong_input_size_raises():
    model = AlexNetTrunk(input_size=220)
    with pytest.raises(ValueError, match="input_size=220"):
        model(torch.zeros(2, 3, 224, 224))


def test_alexnet_too_small_input_size_raises():
    with pytest.raises(ValueError, match="input_size=32"):
        AlexNetTrunk(input_size=32)


def test_unknown_pooling_raises():
    with pytest.raises(ValueError, match="pooling"):
        AlexNetTrunk(pooling="median")
