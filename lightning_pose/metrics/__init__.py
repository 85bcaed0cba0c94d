"""Pose metrics in original-image pixels: PCK, PDJ (DeepPose §5), PCKh (Andriluka et al. 2014),
bbox-PCK, PCP (strict percentage of correct parts, DeepPose Table 1), OKS AP (COCO, through
pycocotools); the AP of sliding-window detectors (Li, Liu & Chan 2014)."""

from lightning_pose.metrics.detection import WindowAveragePrecision
from lightning_pose.metrics.functional import keypoint_distances
from lightning_pose.metrics.oks import OKSAveragePrecision, oks_average_precision
from lightning_pose.metrics.pck import PCK, PDJ, PCKh
from lightning_pose.metrics.pcp import PCP
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics

__all__ = [
    "PCK",
    "PCP",
    "PDJ",
    "EvaluationProtocol",
    "OKSAveragePrecision",
    "PCKh",
    "StageMetrics",
    "WindowAveragePrecision",
    "keypoint_distances",
    "oks_average_precision",
]
