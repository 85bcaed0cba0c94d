from lightning_pose.models.base import Estimate, PoseEstimator
from lightning_pose.models.cascade import DeepPoseCascade, PoseRegressor
from lightning_pose.models.deeppose import DeepPose
from lightning_pose.models.heads import (
    HeatmapHead,
    PositionRefinement,
    RegressionHead,
    SimCCHead,
    WindowDetectionHead,
)
from lightning_pose.models.heatmap import HeatmapPose
from lightning_pose.models.multitask import MultiTaskPose
from lightning_pose.models.simcc import SimCCPose
from lightning_pose.models.trunks import (
    AlexNetTrunk,
    EfficientNetLite0Trunk,
    MultiResolutionTrunk,
    ResNetTrunk,
    Trunk,
)

__all__ = [
    "AlexNetTrunk",
    "DeepPose",
    "DeepPoseCascade",
    "EfficientNetLite0Trunk",
    "HeatmapHead",
    "HeatmapPose",
    "MultiResolutionTrunk",
    "MultiTaskPose",
    "Estimate",
    "PoseEstimator",
    "PoseRegressor",
    "PositionRefinement",
    "RegressionHead",
    "ResNetTrunk",
    "SimCCHead",
    "SimCCPose",
    "Trunk",
    "WindowDetectionHead",
]
