"""Tompson et al. 2015's multi-resolution convolutional banks (§3, Fig. 3) as a trunk, with
their local contrast normalisation (Jarrett et al. 2009)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_pose.models.trunks.base import Trunk


class LocalContrastNormalisation(nn.Module):
    """Subtractive then divisive local contrast normalisation (Jarrett et al. 2009, §2.1; the
    input layer of Tompson et al. 2015, §3, Fig. 3). Fixed, not learnt.

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
