"""torchvision ResNet (He et al. 2016) as a trunk, its pyramid read by torchvision's
``create_feature_extractor``."""

from __future__ import annotations

from typing import Literal

import torchvision
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

from lightning_pose.models.trunks.base import Trunk

_RESNET_OUT_CHANNELS = {18: 512, 34: 512, 50: 2048}
# torchvision's names of the residual layers that give strides 4, 8, 16 and 32.
_RESNET_PYRAMID_NODES = ("layer1", "layer2", "layer3", "layer4")


class ResNetTrunk(Trunk):
    """torchvision ResNet (He et al. 2016) up to ``layer4`` (no pooling, no classifier).

    Output: 512 channels for depth 18/34, 2048 for depth 50, stride 32; any input >= 32 px.
    ``self.net`` is torchvision's ``create_feature_extractor`` graph of the network, returning
    ``layer1`` ... ``layer4``: the same modules under the same names (so the same state-dict
    keys, ``net.conv1.weight``, ...) without ``avgpool`` and ``fc``; the graph runs the
    stem (``conv1``, ``bn1``, ``relu``, ``maxpool``) and ``layer1`` ... ``layer4`` in turn.

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
        # The traced graph ends at layer4: pooling and classifier belong to the head. The
        # residual layers stay whole modules (leaves of the trace), so the graph reads
        # conv1 - bn1 - relu - maxpool - layer1 ... layer4 and net.layer1 is torchvision's.
        extractor = create_feature_extractor(
            net,
            return_nodes=list(_RESNET_PYRAMID_NODES),
            tracer_kwargs={"leaf_modules": [nn.Sequential]},
        )
        # torchvision returns a DualGraphModule: a train and an eval graph, swapped by train().
        # ResNet's two are the same code, and a DualGraphModule's deep copy (DeepPoseCascade
        # copies its trunk) comes back in train mode, so one plain GraphModule is kept.
        self.net = fx.GraphModule(extractor, extractor.graph, class_name="ResNet")
        widths = (64, 128, 256, 512) if depth < 50 else (256, 512, 1024, 2048)
        self.pyramid_strides, self.pyramid_channels = (4, 8, 16, 32), widths

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """The outputs of ``layer1`` ... ``layer4``: strides 4, 8, 16, 32. torchvision's
        network, whose weight names (``weights``) the configs give, rather than timm's
        ``features_only`` model, another implementation with its own weights."""
        maps = self.net(image)  # {"layer1": (B, C_1, H/4, W/4), ..., "layer4": (B, C_4, ...)}
        return [maps[name] for name in _RESNET_PYRAMID_NODES]

    def forward(self, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
        """``image (B, 3, H, W)`` -> ``(B, out_channels, H/32, W/32)``, or with ``pyramid``
        the maps of :meth:`pyramid`."""
        maps = self.pyramid(image)
        return maps if pyramid else maps[-1]
