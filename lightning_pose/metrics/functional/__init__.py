"""The public functional metrics: score arrays of keypoints from any model, without a metric
object (as torchmetrics' ``functional``).

* :func:`pck`, :func:`pdj` (DeepPose §5), :func:`pckh` (Andriluka et al. 2014):
  :mod:`~lightning_pose.metrics.functional.correct_keypoints`;
* :func:`pcp`, strict PCP (Ferrari et al. 2008; DeepPose Table 1):
  :mod:`~lightning_pose.metrics.functional.correct_parts`;
* :func:`mean_joint_error`, in pixels: :mod:`~lightning_pose.metrics.functional.joint_error`;
* :func:`oks_average_precision`, COCO OKS AP through pycocotools:
  :mod:`~lightning_pose.metrics.functional.oks`;
* :func:`keypoint_distances`.

Each submodule also holds the private ``_<metric>_update`` (one batch -> fixed-size sums) and
``_<metric>_compute`` functions the metric classes of :mod:`lightning_pose.metrics` call. The
modules here import only torch, NumPy, pycocotools, :mod:`lightning_pose.metrics.utilities`
and the codecs; nothing in :mod:`lightning_pose.metrics` is imported back.
"""

from lightning_pose.metrics.functional.correct_keypoints import pck, pckh, pdj
from lightning_pose.metrics.functional.correct_parts import pcp
from lightning_pose.metrics.functional.joint_error import mean_joint_error
from lightning_pose.metrics.functional.oks import oks_average_precision
from lightning_pose.metrics.utilities import keypoint_distances

__all__ = [
    "keypoint_distances",
    "mean_joint_error",
    "oks_average_precision",
    "pck",
    "pckh",
    "pcp",
    "pdj",
]
