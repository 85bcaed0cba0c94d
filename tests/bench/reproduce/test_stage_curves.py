"""bench/reproduce/stage_curves.py: the seeds' mean curve per stage, and runs that do not match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.plots.curves import save_pdj_curves
from tests.bench import load

stage_curves = load("reproduce/stage_curves")


def write_run(folder: Path, stage1: np.ndarray, stage2: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    thresholds = np.linspace(0, 0.5, len(stage1))
    save_pdj_curves(folder / "val_pdj_curve", thresholds, {1: stage1, 2: stage2})
    return folder


def test_the_seeds_mean_per_stage_and_the_figure(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", np.array([0.0, 0.2, 0.4]), np.array([0.0, 0.3, 0.6]))
    b = write_run(tmp_path / "b", np.array([0.0, 0.4, 0.6]), np.array([0.0, 0.5, 0.8]))
    thresholds, stages = stage_curves.seed_mean([a, b])
    np.testing.assert_allclose(thresholds, [0.0, 0.25, 0.5])
    np.testing.assert_allclose(stages[1], [0.0, 0.3, 0.5])
    np.testing.assert_allclose(stages[2], [0.0, 0.4, 0.7])
    out = tmp_path / "fig.png"
    stage_curves.main([str(out), f"s4={a},{b}", f"s8={b}", "--stage-names", "coarse", "refined"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_with_other_thresholds_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a = write_run(tmp_path / "a", np.zeros(3), np.zeros(3))
    b = write_run(tmp_path / "b", np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="differ"):
        stage_curves.seed_mean([a, b])
    with pytest.raises(SystemExit) as exit_info:
        stage_curves.main([str(tmp_path / "f.png"), "no-label"])
    assert exit_info.value.code == 2  # argparse's usage error
    assert "expected LABEL=RUN[,another seed's,...], got 'no-label'" in capsys.readouterr().err
