"""The trunk protocol: :class:`Trunk` (normalisation, output stride, feature pyramid) and
:func:`feature_pyramid_levels`, which picks the pyramid maps a dense head reads."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Trunk(nn.Module):
    """Base class of trunks: ``image (B, 3, H, W) -> feature maps (B, C, h, w)``.

    Every trunk states

    - ``out_channels``: C, the channels of its output feature map;
    - ``stride``: input pixels per feature-map cell (nominal: the product of its strides);
    - ``mean`` / ``std``: the per-channel RGB normalisation (in [0, 1] units) its weights
      expect, applied by :meth:`normalise`;
    - ``input_size``: the one input side it accepts, or None for any size >= its stride.

    Trunks that serve dense heads (heatmaps, sliding-window detection) also return a feature
    pyramid, ``trunk(image, pyramid=True)`` (:meth:`pyramid`): maps at ``pyramid_strides``
    (finest first) with ``pyramid_channels``. Through ``forward`` either way, so a compiled
    trunk (``CompiledInference``) compiles both.

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


def feature_pyramid_levels(trunk: Trunk, output_stride: int | None, levels: int) -> list[int]:
    """Indices into ``trunk.pyramid`` of the ``levels`` maps from ``output_stride`` upward
    (fewer where the pyramid ends first); ``output_stride=None`` starts at the finest map.

    Raises:
        ValueError: ``levels`` < 1, the trunk has no feature pyramid (no ``pyramid_strides``),
            or no map at ``output_stride`` (names the strides it has).
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
