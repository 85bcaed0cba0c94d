"""WindowDetectionHead: each window scored from its pooled features, the prior bias."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_pose.models.heads import WindowDetectionHead
from lightning_pose.models.trunks import ResNetTrunk


def test_window_detection_head_scores_each_window_from_its_mean_feature() -> None:
    # An 8 x 8 map, grid (G_x, G_y) = (4, 2): window (column i, row j) pools cells
    # [4j, 4j + 4) x [2i, 2i + 2). With a classifier that sums the channels, its logit is the
    # mean over those cells plus the bias; the bias starts at the prior log(p / (1 - p)).
    torch.manual_seed(0)
    trunk = ResNetTrunk(depth=18)
    head = WindowDetectionHead(trunk, num_classes=3, grid=(4, 2)).eval()
    prior = math.log((1 / 8) / (1 - 1 / 8))
    torch.testing.assert_close(head.classifier.bias, torch.full((3,), prior), rtol=0, atol=1e-6)
    with torch.no_grad():
        head.classifier.weight.fill_(1.0)
    features = torch.randn(2, 512, 8, 8)
    logits = head(features)
    assert logits.shape == (2, 3, 2, 4)
    summed = features.sum(1)  # (2, 8, 8)
    expected = summed[:, 4:8, 6:8].mean(dim=(-2, -1)) + prior  # row 1, column 3
    torch.testing.assert_close(logits[:, 0, 1, 3], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[:, 2, 1, 3], expected, rtol=1e-5, atol=1e-5)


def test_window_detection_head_hidden_layers_and_bad_values() -> None:
    head = WindowDetectionHead(ResNetTrunk(depth=18), 5, (3, 3), hidden_channels=(64,), dropout=0.1)
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in convs] == [
        (512, 64, (1, 1)),
        (64, 5, (1, 1)),
    ]
    assert head(torch.randn(1, 512, 2, 2)).shape == (1, 5, 3, 3)  # a map smaller than the grid
    with pytest.raises(ValueError, match="grid must be"):
        WindowDetectionHead(ResNetTrunk(depth=18), 5, (3, 0))
    with pytest.raises(ValueError, match="dropout"):
        WindowDetectionHead(ResNetTrunk(depth=18), 5, (3, 3), dropout=1.0)
