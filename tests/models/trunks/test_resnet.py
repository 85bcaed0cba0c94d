"""ResNetTrunk: depth and weights checks, and its ``create_feature_extractor`` pyramid against
the hand-written forward it replaced (bit-identical, same state-dict keys)."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor

from lightning_pose.models.trunks import ResNetTrunk


@pytest.mark.parametrize("depth", [10, 101])
def test_unknown_resnet_depth_raises(depth):
    with pytest.raises(ValueError, match=r"depth must be one of \[18, 34, 50\]"):
        ResNetTrunk(depth=depth)


def test_unknown_resnet_weights_name_raises_before_download():
    with pytest.raises(ValueError, match="weights='IMAGENET_NOPE'.*IMAGENET1K_V1"):
        ResNetTrunk(depth=18, weights="IMAGENET_NOPE")


def hand_written_pyramid(trunk: ResNetTrunk, image: Tensor) -> list[Tensor]:
    """The pyramid as it was written by hand before ``create_feature_extractor``: torchvision's
    ``ResNet._forward_impl`` up to ``layer4``, keeping each layer's output."""
    n = trunk.net
    x = n.maxpool(n.relu(n.bn1(n.conv1(image))))  # (B, 64, H/4, W/4)
    maps = []
    for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
        x = layer(x)
        maps.append(x)
    return maps


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_feature_extractor_equals_the_hand_written_pyramid(depth: int, training: bool) -> None:
    torch.manual_seed(0)
    trunk = ResNetTrunk(depth).train(training)
    reference = copy.deepcopy(trunk)  # train mode updates batch-norm statistics: one each
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = trunk(image, pyramid=True)
        expected = hand_written_pyramid(reference, image)
    assert len(maps) == 4
    for got, want in zip(maps, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for key, value in reference.state_dict().items():  # the same statistics updates
        torch.testing.assert_close(trunk.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_state_dict_is_torchvisions_without_the_classifier(depth: int) -> None:
    """Checkpoints of the hand-written trunk (``net`` = torchvision's ResNet without ``fc``)
    load unchanged: same keys and, under one seed, the same initialisation."""
    torch.manual_seed(0)
    trunk = ResNetTrunk(depth)
    torch.manual_seed(0)
    full = torchvision.models.get_model(f"resnet{depth}").state_dict()
    expected = {f"net.{k}": v for k, v in full.items() if not k.startswith("fc.")}
    state = trunk.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)


def test_deep_copy_is_independent_and_switches_mode() -> None:
    """DeepPoseCascade deep-copies its trunk per stage; the copy computes the same maps with
    its own parameters and follows train() / eval()."""
    torch.manual_seed(0)
    trunk = ResNetTrunk(18).eval()
    twin = copy.deepcopy(trunk)
    assert not any(m.training for m in twin.modules())  # eval mode survives the copy
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(twin(image), trunk(image), rtol=0, atol=0)
        twin.net.conv1.weight.add_(1.0)
    assert not torch.equal(twin.net.conv1.weight, trunk.net.conv1.weight)
    twin.train()
    assert all(m.training for m in twin.modules())
    assert not any(m.training for m in trunk.modules())


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_train_and_eval_graphs_are_the_same(depth: int) -> None:
    """The trunk keeps one traced graph for both modes: torchvision's traces agree."""
    extractor = create_feature_extractor(
        torchvision.models.get_model(f"resnet{depth}"),
        return_nodes=["layer1", "layer2", "layer3", "layer4"],
        tracer_kwargs={"leaf_modules": [nn.Sequential]},
    )
    train_code = extractor.train_graph.python_code("self").src
    assert train_code == extractor.eval_graph.python_code("self").src
    assert train_code == ResNetTrunk(depth).net.code
