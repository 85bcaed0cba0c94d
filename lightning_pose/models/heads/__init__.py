"""Heads: what a model family puts on a trunk's feature maps, one file each.

- :class:`RegressionHead` (``regression.py``): box-normalised joint coordinates (DeepPose §3).
- :class:`HeatmapHead` (``heatmap.py``): one heat-map per joint (Tompson et al. 2015 §3).
- :class:`WindowDetectionHead` (``detection.py``): a logit per class and window of a grid
  (Li, Liu & Chan 2014 §3).
- :class:`SimCCHead` (``simcc.py``): logits over bins along each axis (SimCC, Li et al. 2022).
- :class:`PositionRefinement` (``refinement.py``): fine heat-maps from crops of the coarse
  model's feature maps (Tompson et al. 2015 §4).

A head is built by its model from the trunk it sits on (``factory(trunk, num_joints, ...)``),
so a config never repeats the trunk's sizes.
"""

from lightning_pose.models.heads.detection import DetectionHeadFactory, WindowDetectionHead
from lightning_pose.models.heads.heatmap import HeatmapHead, HeatmapHeadFactory
from lightning_pose.models.heads.refinement import PositionRefinement, RefinementFactory
from lightning_pose.models.heads.regression import RegressionHead, RegressionHeadFactory
from lightning_pose.models.heads.simcc import SimCCHead, SimCCHeadFactory

__all__ = [
    "DetectionHeadFactory",
    "HeatmapHead",
    "HeatmapHeadFactory",
    "PositionRefinement",
    "RefinementFactory",
    "RegressionHead",
    "RegressionHeadFactory",
    "SimCCHead",
    "SimCCHeadFactory",
    "WindowDetectionHead",
]
