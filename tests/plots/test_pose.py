"""Poses drawn on images and label statistics: figures build without pyplot; a diverged
estimate is drawn without raising."""

from __future__ import annotations

import numpy as np

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.plots.pose import draw_skeleton, joint_visibility_figure


def test_joint_visibility_figure_has_a_bar_per_joint_and_label_kind() -> None:
    labelled = np.array([[True, False], [True, True]])  # (N=2 images, K=2 joints)
    visible = np.array([[True, False], [False, True]])
    fig = joint_visibility_figure(["head", "neck"], labelled, visible)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [100, 50, 50, 50], rtol=0, atol=1e-9)


def test_draw_skeleton_survives_a_diverged_estimate() -> None:
    """NaN and huge coordinates (a diverged model) are not drawn and never raise (before: a
    raw ``cv2.error`` from casting them to int)."""
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    keypoints = np.full((14, 2), np.nan)  # LSP: 0 right ankle, 1 right knee (a limb)
    keypoints[0] = (5.0, 5.0)
    keypoints[2] = (1e30, -np.inf)
    out = draw_skeleton(image, keypoints, LSP_SKELETON, (255, 0, 0), limb_colour=(0, 255, 0))
    assert tuple(out[5, 5]) == (255, 0, 0)  # the finite joint
    assert out[:, :, 0].sum() == out[3:8, 3:8, 0].sum()  # nothing else drawn in its colour
    assert not out[:, :, 1].any()  # no limb: each has a non-finite end
    keypoints[1] = (1e30, 5.0)  # the knee far to the right: the shin is drawn, clipped
    far = draw_skeleton(image, keypoints, LSP_SKELETON, (255, 0, 0), limb_colour=(0, 255, 0))
    assert tuple(far[5, 15]) == (0, 255, 0)
