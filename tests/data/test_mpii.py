"""MPII in HRNet's / MMPose's JSON layout, on a small generated set: conventions with known
answers, the official PCKh head-box normaliser, and errors naming the file and entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from lightning_pose.data import DatasetError, PoseDataModule
from lightning_pose.data.mpii import MPII, MPIIKeypoints
from tests.conftest import write_image


def person(image: str, shift: float = 0.0) -> dict:
    joints = [[11.0 + j + shift, 21.0 + 2 * j] for j in range(16)]
    vis = [1] * 16
    vis[6] = 0  # pelvis not labelled
    joints[6] = [-1.0, -1.0]
    return {
        "image": image,
        "center": [31.0, 41.0],
        "scale": 0.2,
        "joints": joints,
        "joints_vis": vis,
    }


def write_mpii(root: Path, head_boxes: bool = True) -> MPIIKeypoints:
    (root / "annot").mkdir(parents=True)
    train = [person("000000001.jpg"), person("000000002.jpg", 1.0), person("000000002.jpg", 2.0)]
    val = [person("000000003.jpg"), person("000000004.jpg")]
    (root / "annot" / "mpii_train.json").write_text(json.dumps(train))
    (root / "annot" / "mpii_val.json").write_text(json.dumps(val))
    # head boxes (2, 2, N): corners (x1, y1), (x2, y2); diagonals 5 and 10 px
    boxes = np.zeros((2, 2, 2))
    boxes[1, :, 0] = (3.0, 4.0)
    boxes[1, :, 1] = (6.0, 8.0)
    scipy.io.savemat(root / "annot" / "mpii_gt_val.mat", {"headboxes_src": boxes})
    for name in ("000000001.jpg", "000000002.jpg", "000000003.jpg", "000000004.jpg"):
        write_image(root / "images" / name, 64, 80, seed=1)
    return MPIIKeypoints(
        "annot/mpii_train.json",
        "annot/mpii_val.json",
        "images",
        head_boxes="annot/mpii_gt_val.mat" if head_boxes else None,
    )


def test_conventions_known_answers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        ann = write_mpii(tmp_path).read(tmp_path)
    assert len(ann) == 5 and ann.is_train.sum() == 3 and ann.is_val.sum() == 2
    assert ann.skeleton == MPII and MPII.flip_permutation()[10] == 15
    np.testing.assert_allclose(
        ann.keypoints_px[0, 0], [10.0, 20.0], atol=0, rtol=0
    )  # 1-based -> ours
    np.testing.assert_allclose(ann.keypoints_px[0, 6], [0.0, 0.0], atol=0, rtol=0)  # not labelled
    assert not ann.labelled[0, 6] and ann.labelled[0].sum() == 15
    np.testing.assert_array_equal(ann.visible, ann.labelled)
    # centre (31, 41) - 1, moved down 15 x 0.2 px; side 1.25 x 200 x 0.2
    np.testing.assert_allclose(ann.box_px[0], [30.0, 43.0, 50.0, 50.0], rtol=0, atol=1e-5)
    # val: 0.6 x head-box diagonal; train: the neck (8) to head-top (9) segment
    np.testing.assert_allclose(ann.head_size_px[3:], [3.0, 6.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ann.head_size_px[0], np.hypot(1.0, 2.0), rtol=1e-6, atol=0)
    assert "PCKh normaliser: 0.6 x head-box diagonal" in caplog.text
    assert ann.image_paths[1] == ann.image_paths[2] and ann.image_ids[1] == ann.image_ids[2]


def test_without_head_boxes_pckh_uses_the_head_segment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        ann = write_mpii(tmp_path, head_boxes=False).read(tmp_path)
    np.testing.assert_allclose(ann.head_size_px, np.full(5, np.hypot(1.0, 2.0)), rtol=1e-6, atol=0)
    assert "upper-neck to head-top segment (no head_boxes given)" in caplog.text


def test_samples_carry_the_head_box_normaliser(tmp_path: Path) -> None:
    reader = write_mpii(tmp_path)
    dm = PoseDataModule(dataset=reader, root=str(tmp_path), input_size=32, num_workers=0)
    dm.setup("validate")
    samples = [dm.splits["val"][i] for i in range(2)]
    torch.testing.assert_close(
        torch.stack([s["head_size_px"] for s in samples]),
        torch.tensor([3.0, 6.0]),
        rtol=0,
        atol=1e-6,
    )


def test_bad_entries_and_head_box_count_are_named(tmp_path: Path) -> None:
    reader = write_mpii(tmp_path)
    val = json.loads((tmp_path / "annot" / "mpii_val.json").read_text())
    scipy.io.savemat(tmp_path / "annot" / "mpii_gt_val.mat", {"headboxes_src": np.zeros((2, 2, 3))})
    with pytest.raises(
        DatasetError, match=r"'headboxes_src' has shape \(2, 2, 3\), expected \(2, 2, 2\)"
    ):
        reader.read(tmp_path)
    del val[1]["joints_vis"]
    (tmp_path / "annot" / "mpii_val.json").write_text(json.dumps(val))
    with pytest.raises(
        DatasetError, match=r"mpii_val.json: person 1 \(0-based\) lacks \['joints_vis'\]"
    ):
        reader.read(tmp_path)
    val[1]["joints_vis"] = [1] * 15
    (tmp_path / "annot" / "mpii_val.json").write_text(json.dumps(val))
    with pytest.raises(
        DatasetError, match=r"person 1 \(0-based\): joints \(16, 2\) and joints_vis \(15,\)"
    ):
        reader.read(tmp_path)
