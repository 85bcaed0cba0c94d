"""The DeepPose convolutional network as a trunk (Toshev & Szegedy 2014, §3)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lightning_pose.models.trunks.base import Trunk


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
