"""Trunks (timm-style: every variant, forward + backward) and the offline EfficientNet-Lite0
weights."""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import matplotlib.pyplot as plt
import pytest
import timm
import torch
from torch import nn

from lightning_pose.models.efficientnet_lite0 import (
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0_weights,
)
from lightning_pose.models.trunks import (
    AlexNetTrunk,
    EfficientNetLite0Trunk,
    LocalContrastNormalisation,
    MultiResolutionTrunk,
    ResNetTrunk,
)

# (id, constructor, input side, expected (C, h, w) of the feature map)
VARIANTS = [
    ("alexnet-max", lambda: AlexNetTrunk(input_size=220, pooling="max"), 220, (256, 6, 6)),
    ("alexnet-avg", lambda: AlexNetTrunk(input_size=220, pooling="avg"), 220, (256, 6, 6)),
    ("resnet18", lambda: ResNetTrunk(depth=18), 64, (512, 2, 2)),
    ("resnet34", lambda: ResNetTrunk(depth=34), 64, (512, 2, 2)),
    ("resnet50", lambda: ResNetTrunk(depth=50), 64, (2048, 2, 2)),
    ("effnet-lite0-pretrained", lambda: EfficientNetLite0Trunk(pretrained=True), 64, (1280, 2, 2)),
    ("effnet-lite0-random", lambda: EfficientNetLite0Trunk(pretrained=False), 64, (1280, 2, 2)),
]


@pytest.mark.parametrize(
    ("make", "size", "shape"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_forward_backward_every_parameter_gets_gradient(make, size, shape):
    torch.manual_seed(0)
    model = make().train()
    assert model.out_channels == shape[0]
    assert model.stride == 32
    assert len(model.mean) == 3 and len(model.std) == 3
    image = torch.randn(2, 3, size, size)
    features = model(image)
    assert features.shape == (2, *shape)
    assert model.feature_size(size) == shape[1:]
    assert model.training  # feature_size restores the mode
    assert torch.isfinite(features).all()
    # A random projection, not a plain sum: with batch-statistics BatchNorm the batch sum of a
    # normalised channel is constant, which would zero some gradients for the wrong reason.
    projection = torch.randn(shape)
    loss = (features * projection).sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.requires_grad, name
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


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


@pytest.mark.parametrize("depth", [10, 101])
def test_unknown_resnet_depth_raises(depth):
    with pytest.raises(ValueError, match=r"depth must be one of \[18, 34, 50\]"):
        ResNetTrunk(depth=depth)


def test_unknown_resnet_weights_name_raises_before_download():
    with pytest.raises(ValueError, match="weights='IMAGENET_NOPE'.*IMAGENET1K_V1"):
        ResNetTrunk(depth=18, weights="IMAGENET_NOPE")


def test_normalise_uses_the_trunk_statistics():
    image = torch.tensor([0.5, 0.75, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    expected = (image - torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET[1]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(ResNetTrunk().normalise(image), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        EfficientNetLite0Trunk(pretrained=False).normalise(image), 2 * image - 1, rtol=0, atol=1e-6
    )


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_mean_std_class_attributes():
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (AlexNetTrunk.mean, AlexNetTrunk.std) == imagenet
    assert (ResNetTrunk.mean, ResNetTrunk.std) == imagenet
    # TF EfficientNet-Lite inputs are (rgb - 127) / 128; timm's pretrained_cfg agrees.
    cfg = timm.create_model("tf_efficientnet_lite0", pretrained=False).pretrained_cfg
    assert EfficientNetLite0Trunk.mean == tuple(cfg["mean"]) == (0.5, 0.5, 0.5)
    assert EfficientNetLite0Trunk.std == tuple(cfg["std"]) == (0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def lite0_file_state() -> dict[str, torch.Tensor]:
    return torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def test_efficientnet_lite0_pretrained_weights_are_loaded(lite0_file_state):
    torch.manual_seed(0)
    pretrained = EfficientNetLite0Trunk(pretrained=True).eval()
    random_init = EfficientNetLite0Trunk(pretrained=False).eval()
    state = pretrained.net.state_dict()
    # Spot checks of the renaming, first / middle (stage 0 vs inverted residual) / last.
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


@pytest.mark.parametrize("pooling", ["max", "avg", "conv"])
@pytest.mark.parametrize("num_poolings", [2, 3, 4])
def test_multiresolution_pyramid_strides_tile_the_input(pooling: str, num_poolings: int):
    trunk = MultiResolutionTrunk(pooling, num_poolings, channels=4, out_channels=8)
    size = 64 * 2 ** max(0, num_poolings - 2)
    maps = trunk.pyramid(torch.rand(2, 3, size, size))
    s = 2**num_poolings
    assert trunk.stride == s and trunk.pyramid_strides == (s, 2 * s, 4 * s)
    assert [tuple(m.shape) for m in maps] == [
        (2, 8, size // t, size // t) for t in (s, 2 * s, 4 * s)
    ]
    pools = [m for m in trunk.banks[0] if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    strided = [m for m in trunk.banks[0] if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(pools if pooling != "conv" else strided) == num_poolings


def test_multiresolution_weight_sharing_and_bad_input_size():
    shared = MultiResolutionTrunk(channels=4, out_channels=8, share_weights=True)
    separate = MultiResolutionTrunk(channels=4, out_channels=8, share_weights=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert len(shared.banks) == 1 and len(separate.banks) == 3
    assert count(separate) == 3 * count(shared)
    with pytest.raises(ValueError, match="divisible by 16.*data.input_size"):
        shared.pyramid(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="pooling"):
        MultiResolutionTrunk(pooling="median")
    with pytest.raises(ValueError, match="num_poolings"):
        MultiResolutionTrunk(num_poolings=5)


def test_local_contrast_normalisation_removes_local_mean_and_scale():
    lcn = LocalContrastNormalisation(3)
    image = torch.rand(1, 3, 32, 32)
    out = lcn(image)
    assert torch.allclose(lcn(3 * image + 5), out, atol=1e-4)  # invariant to gain and offset
    assert out[..., 8:-8, 8:-8].mean().abs() < 0.1


def test_pretrained_trunk_pyramids_have_their_stated_strides_and_channels():
    for trunk in (EfficientNetLite0Trunk(pretrained=False), ResNetTrunk(18)):
        maps = trunk.pyramid(torch.rand(1, 3, 64, 64))
        assert trunk.pyramid_strides == (4, 8, 16, 32)
        assert [m.shape[1] for m in maps] == list(trunk.pyramid_channels)
        assert [m.shape[-1] for m in maps] == [16, 8, 4, 2]
    with pytest.raises(NotImplementedError, match="no feature pyramid"):
        AlexNetTrunk().pyramid(torch.rand(1, 3, 220, 220))


def test_frozen_stages_fix_the_stem_and_first_blocks_with_their_statistics() -> None:
    trunk = EfficientNetLite0Trunk(pretrained=True, frozen_stages=2)
    net = trunk.net
    frozen = [net.conv_stem, net.bn1, net.blocks[0], net.blocks[1]]
    before = {id(p): p.detach().clone() for m in frozen for p in m.parameters()}
    stats = net.bn1.running_mean.clone()
    trunk.train()
    assert not any(m.training for m in frozen) and net.blocks[2].training
    maps = trunk.pyramid(torch.rand(2, 3, 64, 64))
    sum(m.square().mean() for m in maps).backward()
    for module in frozen:
        for p in module.parameters():
            assert not p.requires_grad and p.grad is None
    assert all(p.grad is not None for p in net.blocks[2].parameters())
    assert torch.equal(net.bn1.running_mean, stats)  # eval mode: statistics not updated
    for module in frozen:
        for p in module.parameters():
            assert torch.equal(p, before[id(p)])


def test_no_frozen_stages_by_default() -> None:
    trunk = EfficientNetLite0Trunk(pretrained=False)
    assert trunk.frozen_modules() == []
    assert all(p.requires_grad for p in trunk.parameters())


@pytest.mark.parametrize("frozen_stages", [-2, 8])
def test_frozen_stages_out_of_range_raises(frozen_stages: int) -> None:
    with pytest.raises(ValueError, match=r"frozen_stages must be in \[-1, 7\]"):
        EfficientNetLite0Trunk(pretrained=False, frozen_stages=frozen_stages)
