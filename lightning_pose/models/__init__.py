from lightning_pose.models.backbones import (
    AlexNetBackbone,
    EfficientNetLite0Backbone,
    ResNetBackbone,
)
from lightning_pose.models.base import PoseEstimator
from lightning_pose.models.cascade import DeepPoseCascade
from lightning_pose.models.deeppose import DeepPose, PoseRegressor

__all__ = [
    "AlexNetBackbone",
    "DeepPose",
    "DeepPoseCascade",
    "EfficientNetLite0Backbone",
    "PoseEstimator",
    "PoseRegressor",
    "ResNetBackbone",
]
