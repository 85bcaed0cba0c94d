"""Plots and their numbers: the PDJ-curve files read back what was written; figures build
without pyplot (headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.plots import (
    joint_visibility_figure,
    read_pdj_curves,
    save_pdj_curves,
    sweep_comparison_figure,
)


def test_pdj_curve_files_round_trip(tmp_path: Path) -> None:
    thresholds = np.linspace(0.0, 0.5, 6)
    curves = {1: np.linspace(0.0, 0.5, 6), 2: np.linspace(0.1, 0.9, 6)}
    save_pdj_curves(tmp_path / "val_pdj_curve", thresholds, curves)
    assert (tmp_path / "val_pdj_curve.png").stat().st_size > 0
    read_thresholds, read_curves = read_pdj_curves(tmp_path / "val_pdj_curve.csv")
    np.testing.assert_allclose(read_thresholds, thresholds, rtol=0, atol=1e-6)
    assert sorted(read_curves) == [1, 2]
    for s in (1, 2):
        np.testing.assert_allclose(read_curves[s], curves[s], rtol=0, atol=1e-6)


def test_read_pdj_curves_names_a_wrong_file(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("x,y\n0,1\n")
    with pytest.raises(ValueError, match="other.csv.*threshold,stage1"):
        read_pdj_curves(path)


def test_figures_have_their_panels() -> None:
    labelled = np.array([[True, False], [True, True]])  # (N=2 images, K=2 joints)
    visible = np.array([[True, False], [False, True]])
    fig = joint_visibility_figure(["head", "neck"], labelled, visible)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [100, 50, 50, 50], rtol=0, atol=1e-9)
    curve = (np.array([0.0, 0.5]), np.array([0.0, 1.0]))
    fig = sweep_comparison_figure(["a", "b"], [0.4, None], "val/pdj@0.2", {"a": curve})
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 1  # b failed: no bar


def test_draw_skeleton_survives_a_diverged_estimate() -> None:
    """NaN and huge coordinates (a diverged model) are not drawn and never raise (before: a
    raw ``cv2.error`` from casting them to int)."""
    from lightning_pose.plots import draw_skeleton
    from lightning_pose.skeleton import LSP

    image = np.zeros((20, 20, 3), dtype=np.uint8)
    keypoints = np.full((14, 2), np.nan)  # LSP: 0 right ankle, 1 right knee (a limb)
    keypoints[0] = (5.0, 5.0)
    keypoints[2] = (1e30, -np.inf)
    out = draw_skeleton(image, keypoints, LSP, (255, 0, 0), limb_colour=(0, 255, 0))
    assert tuple(out[5, 5]) == (255, 0, 0)  # the finite joint
    assert out[:, :, 0].sum() == out[3:8, 3:8, 0].sum()  # nothing else drawn in its colour
    assert not out[:, :, 1].any()  # no limb: each has a non-finite end
    keypoints[1] = (1e30, 5.0)  # the knee far to the right: the shin is drawn, clipped
    far = draw_skeleton(image, keypoints, LSP, (255, 0, 0), limb_colour=(0, 255, 0))
    assert tuple(far[5, 15]) == (0, 255, 0)
