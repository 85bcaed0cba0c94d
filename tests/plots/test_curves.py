"""PDJ curves and sweep figures: the curve files read back what was written; figures build
without pyplot (headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.plots.curves import read_pdj_curves, save_pdj_curves, sweep_comparison_figure


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


def test_sweep_comparison_figure_has_its_panels() -> None:
    curve = (np.array([0.0, 0.5]), np.array([0.0, 1.0]))
    fig = sweep_comparison_figure(["a", "b"], [0.4, None], "val/pdj@0.2", {"a": curve})
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 1  # b failed: no bar
