"""Pose metrics in original-image pixels: PCK, PDJ (DeepPose §5), PCKh (Andriluka et al. 2014),
bbox-PCK, PCP (strict percentage of correct parts, DeepPose Table 1), OKS AP (COCO, through
pycocotools); the mean per-joint error in pixels; the AP of sliding-window detectors (Li, Liu &
Chan 2014). Each metric of a stage declares itself (:class:`MetricDeclaration`); the public
functional forms are in :mod:`lightning_pose.metrics.functional`.

Imports run one way: ``utilities`` -> ``functional`` (pure ``_<metric>_update`` /
``_<metric>_compute`` functions and the public functional API) -> ``sync`` -> the metric
classes (``pck``, ``pcp``, ``oks``; every one updated as ``update(pred_px, batch)``) ->
``declaration`` -> the declared metrics (``wrappers``, ``joint_error``) -> ``protocol``.
``intervals`` (bootstrap intervals) and ``detection`` stand apart. Reading run folders and
writing tables is :mod:`lightning_pose.reports.tables`'s."""

from lightning_pose.metrics.declaration import MetricDeclaration, StageMetric
from lightning_pose.metrics.detection import WindowAveragePrecision
from lightning_pose.metrics.functional import keypoint_distances, oks_average_precision
from lightning_pose.metrics.joint_error import MeanJointError
from lightning_pose.metrics.oks import OKSAveragePrecision
from lightning_pose.metrics.pck import PCK, PDJ, PCKh
from lightning_pose.metrics.pcp import PCP
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics

__all__ = [
    "PCK",
    "PCP",
    "PDJ",
    "EvaluationProtocol",
    "MeanJointError",
    "MetricDeclaration",
    "OKSAveragePrecision",
    "PCKh",
    "StageMetric",
    "StageMetrics",
    "WindowAveragePrecision",
    "keypoint_distances",
    "oks_average_precision",
]
