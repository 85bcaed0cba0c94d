"""Pose metrics: PCK, PDJ (DeepPose §5) and PCKh (Andriluka et al. 2014), in pixels."""

from lightning_pose.metrics.functional import keypoint_distances, segment_lengths
from lightning_pose.metrics.pck import PCK, PDJ, PCKh

__all__ = ["PCK", "PDJ", "PCKh", "keypoint_distances", "segment_lengths"]
