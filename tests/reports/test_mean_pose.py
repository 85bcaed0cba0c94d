"""``lightning-pose report mean-pose``: the floor of the LSPet table on the real data (the
values of ``docs/RESULTS.md``, recorded at ``db221ed``), and the mean pose's known answer on a
generated LSPet whose every image has the same joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lightning_pose.reports import mean_pose
from tests.conftest import write_image

RECORDED = (
    "mean-pose baseline pdj@0.05: 0.2\n"
    "mean-pose baseline pdj@0.1: 0.9\n"
    "mean-pose baseline pdj@0.2: 3.3\n"
    "mean-pose baseline pckh@0.5: 4.4\n"
    "mean-pose baseline pcp@0.5: 0.7\n"
)


def test_the_recorded_floor_on_lspet(shared_data: Path, capsys: pytest.CaptureFixture) -> None:
    assert mean_pose.main([str(shared_data)]) == RECORDED
    assert capsys.readouterr().out == RECORDED


def test_one_pose_everywhere_is_its_own_mean(tmp_path: Path) -> None:
    """Every image 64x48 with the same labelled joints: the mean training pose is that pose,
    so every validation joint is a hit at every threshold."""
    rng = np.random.default_rng(0)
    n = 30
    pose = np.stack([rng.uniform(5, 60, 14), rng.uniform(5, 44, 14)], axis=1)  # (K, 2)
    joints = np.zeros((14, 3, n))
    joints[:, :2, :] = pose[:, :, None]
    joints[:, 2, :] = 1.0
    folder = tmp_path / "lspet"
    folder.mkdir()
    scipy.io.savemat(folder / "joints.mat", {"joints": joints})
    for i in range(n):
        write_image(folder / "images" / f"im{i + 1:05d}.jpg", 64, 48, seed=i)
    results = mean_pose.mean_pose_metrics(tmp_path)
    for key in mean_pose.KEYS:
        assert results[key] == pytest.approx(1.0, abs=1e-6), key
