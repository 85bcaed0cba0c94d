"""The trunk protocol, timm-style over every trunk variant (forward, backward, every parameter
receives a gradient), the normalisation statistics, the pyramids' stated strides and
feature_pyramid_levels."""

from __future__ import annotations

import pytest
import timm
import torch

from lightning_pose.models.trunks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AlexNetTrunk,
    EfficientNetLite0Trunk,
    MultiResolutionTrunk,
    ResNetTrunk,
    feature_pyramid_levels,
)

# (id, constructor, input side, expected (C, h, w) of the feature map, stride)
VARIANTS = [
    ("alexnet-max", lambda: AlexNetTrunk(input_size=220, pooling="max"), 220, (256, 6, 6), 32),
    ("alexnet-avg", lambda: AlexNetTrunk(input_size=220, pooling="avg"), 220, (256, 6, 6), 32),
    ("resnet18", lambda: ResNetTrunk(depth=18), 64, (512, 2, 2), 32),
    ("resnet34", lambda: ResNetTrunk(depth=34), 64, (512, 2, 2), 32),
    ("resnet50", lambda: ResNetTrunk(depth=50), 64, (2048, 2, 2), 32),
    (
        "effnet-lite0-pretrained",
        lambda: EfficientNetLite0Trunk(pretrained=True),
        64,
        (1280, 2, 2),
        32,
    ),
    ("effnet-lite0-random", lambda: EfficientNetLite0Trunk(pretrained=False), 64, (1280, 2, 2), 32),
    (
        "effnet-lite0-pyramid-only",
        lambda: EfficientNetLite0Trunk(pretrained=False, pyramid_only=True),
        64,
        (320, 2, 2),
        32,
    ),
    (
        "multiresolution",
        lambda: MultiResolutionTrunk(channels=4, out_channels=8),
        64,
        (8, 16, 16),
        4,
    ),
]


@pytest.mark.parametrize(
    ("make", "size", "shape", "stride"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_forward_backward_every_parameter_gets_gradient(make, size, shape, stride):
    torch.manual_seed(0)
    model = make().train()
    assert model.out_channels == shape[0]
    assert model.stride == stride
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


def test_normalise_uses_the_trunk_statistics():
    image = torch.tensor([0.5, 0.75, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (image - mean) / std
    torch.testing.assert_close(ResNetTrunk().normalise(image), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        EfficientNetLite0Trunk(pretrained=False).normalise(image), 2 * image - 1, rtol=0, atol=1e-6
    )


def test_mean_std_class_attributes():
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (IMAGENET_MEAN, IMAGENET_STD) == imagenet
    assert (AlexNetTrunk.mean, AlexNetTrunk.std) == imagenet
    assert (ResNetTrunk.mean, ResNetTrunk.std) == imagenet
    assert (MultiResolutionTrunk.mean, MultiResolutionTrunk.std) == imagenet
    # TF EfficientNet-Lite inputs are (rgb - 127) / 128; timm's pretrained_cfg agrees.
    cfg = timm.create_model("tf_efficientnet_lite0", pretrained=False).pretrained_cfg
    assert EfficientNetLite0Trunk.mean == tuple(cfg["mean"]) == (0.5, 0.5, 0.5)
    assert EfficientNetLite0Trunk.std == tuple(cfg["std"]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EfficientNetLite0Trunk(pretrained=False),
        lambda: EfficientNetLite0Trunk(pretrained=False, pyramid_only=True),
        lambda: ResNetTrunk(18),
        lambda: ResNetTrunk(50),
    ],
    ids=["effnet-lite0", "effnet-lite0-pyramid-only", "resnet18", "resnet50"],
)
def test_pretrained_trunk_pyramids_have_their_stated_strides_and_channels(make) -> None:
    torch.manual_seed(0)
    trunk = make().eval()
    maps = trunk.pyramid(torch.rand(1, 3, 64, 64))
    assert trunk.pyramid_strides == (4, 8, 16, 32)
    assert [m.shape[1] for m in maps] == list(trunk.pyramid_channels)
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2]
    assert [m.shape[-2] for m in maps] == [16, 8, 4, 2]
    assert trunk(torch.rand(1, 3, 64, 64), pyramid=True)[0].shape == maps[0].shape


def test_alexnet_has_no_pyramid() -> None:
    with pytest.raises(NotImplementedError, match="no feature pyramid"):
        AlexNetTrunk().pyramid(torch.rand(1, 3, 220, 220))


def test_feature_pyramid_levels_known_answers() -> None:
    resnet = ResNetTrunk(18)  # strides 4, 8, 16, 32
    assert feature_pyramid_levels(resnet, None, 4) == [0, 1, 2, 3]
    assert feature_pyramid_levels(resnet, 4, 2) == [0, 1]
    assert feature_pyramid_levels(resnet, 8, 4) == [1, 2, 3]  # the pyramid ends first
    assert feature_pyramid_levels(resnet, 32, 1) == [3]
    multires = MultiResolutionTrunk(num_poolings=3, channels=4, out_channels=8)  # 8, 16, 32
    assert feature_pyramid_levels(multires, None, 1) == [0]
    assert feature_pyramid_levels(multires, 16, 3) == [1, 2]


def test_feature_pyramid_levels_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"output_stride=2: ResNetTrunk .* \[4, 8, 16, 32\]"):
        feature_pyramid_levels(ResNetTrunk(18), 2, 1)
    with pytest.raises(ValueError, match="AlexNetTrunk has no feature pyramid"):
        feature_pyramid_levels(AlexNetTrunk(), None, 1)
    with pytest.raises(ValueError, match="levels must be >= 1, got 0"):
        feature_pyramid_levels(ResNetTrunk(18), None, 0)
