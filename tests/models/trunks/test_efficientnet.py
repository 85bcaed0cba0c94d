"""EfficientNetLite0Trunk: the offline ImageNet weights (renaming, statistics, a known-answer
classification), frozen blocks, and the ``forward_intermediates`` pyramid against the
hand-written forward it replaced (bit-identical)."""

from __future__ import annotations

import copy
from pathlib import Path

import matplotlib.cbook
import matplotlib.pyplot as plt
import pytest
import timm
import torch
from torch import Tensor, nn

from lightning_pose.models.trunks import (
    EfficientNetLite0Trunk,
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0_weights,
)


@pytest.fixture(scope="module")
def lite0_file_state() -> dict[str, torch.Tensor]:
    return torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def test_efficientnet_lite0_pretrained_weights_are_loaded(lite0_file_state):
    torch.manual_seed(0)
    pretrained = EfficientNetLite0Trunk(pretrained=True).eval()
    random_init = EfficientNetLite0Trunk(pretrained=False).eval()
    state = pretrained.net.state_dict()
    # Spot checks of the renaming: first, middle (blocks.0 vs an inverted residual), last.
    pairs = {
        "_conv_stem.weight": "conv_stem.weight",
        "_blocks.0._depthwise_conv.weight": "blocks.0.0.conv_dw.weight",
        "_blocks.0._project_conv.weight": "blocks.0.0.conv_pw.weight",
        "_blocks.3._expand_conv.weight": "blocks.2.0.conv_pw.weight",
        "_blocks.3._bn1.running_var": "blocks.2.0.bn2.running_var",
        "_blocks.15._project_conv.weight": "blocks.6.0.conv_pwl.weight",
        "_conv_head.weight": "conv_head.weight",
        "_bn1.bias": "bn2.bias",
    }
    for file_key, timm_key in pairs.items():
        torch.testing.assert_close(state[timm_key], lite0_file_state[file_key], rtol=0, atol=0)
    # Independent of the renaming rules: the file and timm list the same layers in the same
    # order, so the i-th non-classifier tensor of the file must be the i-th model tensor.
    file_tensors = [v for k, v in lite0_file_state.items() if not k.startswith("_fc.")]
    assert len(file_tensors) == len(state) == 294
    for expected, actual in zip(file_tensors, state.values(), strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)

    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (pretrained(image) - random_init(image)).abs().max()
    assert diff > 1e-2


def test_efficientnet_lite0_batchnorm_running_stats_loaded():
    model = EfficientNetLite0Trunk(pretrained=True)
    bns = [m for m in model.net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 49
    for bn in bns:
        # Fresh BatchNorm has running_mean == 0 and running_var == 1 exactly.
        assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        # TF-trained weights have a few dead channels with running_var exactly 0; none negative.
        assert (bn.running_var >= 0).all()


def test_efficientnet_lite0_classifies_bundled_photo_as_military_uniform():
    """Known answer: matplotlib's bundled Grace Hopper photo -> ImageNet 652 'military uniform'.

    Checks the weights and the (0.5, 0.5, 0.5) normalisation end to end, with no download.
    """
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    load_efficientnet_lite0_weights(model, efficientnet_lite0_weights_path())
    model.eval()
    rgb = plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))  # (600, 512, 3) uint8
    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    image = nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    mean = torch.tensor(EfficientNetLite0Trunk.mean)[:, None, None]
    std = torch.tensor(EfficientNetLite0Trunk.std)[:, None, None]
    with torch.no_grad():
        probs = model((image - mean) / std).softmax(dim=-1)  # (1, 1000)
    assert probs.argmax().item() == 652
    assert probs[0, 652] > 0.2


def test_efficientnet_lite0_bad_weights_file_raises(tmp_path: Path, lite0_file_state):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    broken = dict(lite0_file_state)
    del broken["_blocks.5._depthwise_conv.weight"]
    broken["_conv_head.weight"] = broken["_conv_head.weight"][:10]
    path = tmp_path / "broken_lite0.pth"
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match="broken_lite0.pth") as info:
        load_efficientnet_lite0_weights(model, path)
    assert "blocks.3.0.conv_dw.weight" in str(info.value)
    assert "_conv_head.weight" in str(info.value)

    garbage = tmp_path / "not_a_checkpoint.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="not_a_checkpoint.pth"):
        load_efficientnet_lite0_weights(model, garbage)


def test_frozen_blocks_fix_the_stem_and_first_blocks_with_their_statistics() -> None:
    trunk = EfficientNetLite0Trunk(pretrained=True, frozen_blocks=2)
    net = trunk.net
    frozen = [net.conv_stem, net.bn1, net.blocks[0], net.blocks[1]]
    assert trunk.frozen_modules() == frozen
    before = {id(p): p.detach().clone() for m in frozen for p in m.parameters()}
    stats = net.bn1.running_mean.clone()
    trunk.train()
    assert not any(m.training for m in frozen) and net.blocks[2].training
    maps = trunk.pyramid(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    sum(m.square().mean() for m in maps).backward()
    for module in frozen:
        for p in module.parameters():
            assert not p.requires_grad and p.grad is None
    assert all(p.grad is not None for p in net.blocks[2].parameters())
    assert torch.equal(net.bn1.running_mean, stats)  # eval mode: statistics not updated
    for module in frozen:
        for p in module.parameters():
            assert torch.equal(p, before[id(p)])


def test_frozen_blocks_zero_freezes_the_stem_only() -> None:
    trunk = EfficientNetLite0Trunk(pretrained=False, frozen_blocks=0)
    assert trunk.frozen_modules() == [trunk.net.conv_stem, trunk.net.bn1]
    assert all(p.requires_grad for p in trunk.net.blocks.parameters())


def test_no_frozen_blocks_by_default() -> None:
    trunk = EfficientNetLite0Trunk(pretrained=False)
    assert trunk.frozen_modules() == []
    assert all(p.requires_grad for p in trunk.parameters())


@pytest.mark.parametrize("frozen_blocks", [-2, 8])
def test_frozen_blocks_out_of_range_raises(frozen_blocks: int) -> None:
    with pytest.raises(ValueError, match=r"frozen_blocks must be in \[-1, 7\]"):
        EfficientNetLite0Trunk(pretrained=False, frozen_blocks=frozen_blocks)


def hand_written_pyramid(trunk: EfficientNetLite0Trunk, image: Tensor) -> list[Tensor]:
    """The pyramid as it was written by hand before ``forward_intermediates``: the stem, then
    blocks 0 ... 6, keeping the outputs of blocks 1, 2, 4 and 6 (the last of each stride)."""
    n = trunk.net
    x = n.bn1(n.conv_stem(image))  # (B, 32, H/2, W/2), BN + ReLU6
    maps = []
    for i, block in enumerate(n.blocks):
        x = block(x)
        if i in (1, 2, 4, 6):
            maps.append(x)
    return maps


@pytest.mark.parametrize("pyramid_only", [False, True], ids=["full", "pyramid-only"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_forward_intermediates_equals_the_hand_written_pyramid(
    pyramid_only: bool, training: bool
) -> None:
    torch.manual_seed(0)
    trunk = EfficientNetLite0Trunk(pretrained=False, pyramid_only=pyramid_only).train(training)
    reference = copy.deepcopy(trunk)  # train mode updates batch-norm statistics: one each
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = trunk(image, pyramid=True)
        expected = hand_written_pyramid(reference, image)
    assert [m.shape[1] for m in maps] == [24, 40, 112, 320]
    for got, want in zip(maps, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for key, value in reference.state_dict().items():  # the same statistics updates
        torch.testing.assert_close(trunk.state_dict()[key], value, rtol=0, atol=0)


def test_pyramid_only_drops_the_head_convolution_alone() -> None:
    """``pyramid_only`` keeps every other weight under its name (checkpoints load) and its
    forward is the pyramid's last map; the full trunk's is the 1280-channel head on it."""
    torch.manual_seed(0)
    full = EfficientNetLite0Trunk(pretrained=False).eval()
    torch.manual_seed(0)
    pruned = EfficientNetLite0Trunk(pretrained=False, pyramid_only=True).eval()
    head = [k for k in full.state_dict() if k.startswith(("net.conv_head.", "net.bn2."))]
    assert len(head) == 6  # conv weight; batch-norm weight, bias, mean, var, count
    assert list(pruned.state_dict()) == [k for k in full.state_dict() if k not in head]
    assert (full.out_channels, pruned.out_channels) == (1280, 320)
    assert (full.layers_after_pyramid, pruned.layers_after_pyramid) == (True, False)
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        last = pruned(image, pyramid=True)[-1]
        torch.testing.assert_close(pruned(image), last, rtol=0, atol=0)
        torch.testing.assert_close(
            full(image), full.net.bn2(full.net.conv_head(last)), rtol=0, atol=0
        )
