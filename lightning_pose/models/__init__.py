from lightning_pose.models.base import Estimate, PoseEstimator
from lightning_pose.models.cascade import DeepPoseCascade
from lightning_pose.models.deeppose import DeepPose, PoseRegressor
from lightning_pose.models.heads import RegressionHead
from lightning_pose.models.trunks import AlexNetTrunk, EfficientNetLite0Trunk, ResNetTrunk, Trunk

__all__ = [
    "AlexNetTrunk",
    "DeepPose",
    "DeepPoseCascade",
    "EfficientNetLite0Trunk",
    "Estimate",
    "PoseEstimator",
    "PoseRegressor",
    "RegressionHead",
    "ResNetTrunk",
    "Trunk",
]
