"""The sliding-window detection head: feature maps -> one logit per joint (or body part) and
window of a grid over the input, the detection tasks of Li, Liu & Chan 2014 §3; its factory is
``(trunk, num_classes, grid) -> head``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from lightning_pose.models.trunks import Trunk


class WindowDetectionHead(nn.Module):
    """Sliding-window detectors: one binary classifier per class (joint or body part) and window
    of a ``(G_x, G_y)`` grid over the input, ``(B, C, h, w) -> logits (B, N, G_y, G_x)``
    (Li, Liu & Chan 2014 §3, the joint-point and body-part detection tasks).

    Average pooling to ``(G_y, G_x)`` bins gives each window the mean feature of the cells under
    it; a classifier shared by every window (1x1 convolutions: hidden ``Conv - ReLU - Dropout``
    layers, then a linear layer with one logit per class) scores it: the same classifier slid
    over the windows. The windows tile the input as the codec's do
    (:class:`~lightning_pose.codecs.windows.WindowCodec`); they line up with the feature cells
    exactly when ``G`` divides the map size (``h = w = 7`` for a 220-px input at stride 32).
    The paper reads its detections from fully connected layers (a separate weight per window,
    each seeing the whole image); sharing the classifier needs ``C x N`` weights instead of
    ``C h w x N G_x G_y``, works at any input size, and each window still sees the context of
    the trunk's receptive field. The last bias starts at ``log(p / (1 - p))`` with
    ``p = 1 / (G_x G_y)``, the share of positive windows (Lin et al. 2017 §3.3), so training
    starts from the label prior rather than from p = 0.5 everywhere.

    Args:
        trunk: the trunk it sits on (read for ``out_channels``).
        num_classes: N, joints or body parts.
        grid: ``(G_x, G_y)`` windows.
        hidden_channels: widths of the hidden per-window layers.
        dropout: dropout probability in training, after each hidden layer.

    Shapes:
        features (B, C, h, w) -> logits (B, N, G_y, G_x).

    Raises:
        ValueError: a grid that is not two positive ints or a dropout outside [0, 1).
    """

    def __init__(
        self,
        trunk: Trunk,
        num_classes: int,
        grid: tuple[int, int],
        hidden_channels: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(grid) != 2 or not all(int(n) == n and n > 0 for n in grid):
            raise ValueError(f"window grid must be (G_x, G_y) positive ints, got {grid!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"detection head dropout must be in [0, 1), got {dropout!r}")
        gx, gy = int(grid[0]), int(grid[1])
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d((gy, gx))]
        width = trunk.out_channels
        for channels in hidden_channels:
            layers += [nn.Conv2d(width, channels, 1), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = channels
        self.pool = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        prior = 1.0 / (gx * gy)
        nn.init.constant_(
            self.classifier.bias, math.log(prior / (1.0 - prior)) if prior < 1 else 0.0
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(self.pool(features))  # (B, N, G_y, G_x)


DetectionHeadFactory = Callable[[Trunk, int, tuple[int, int]], WindowDetectionHead]
