"""Readers on the real annotation files in ../shared/data, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lightning_pose.data.readers import DatasetError, LSPet, read_flic, read_lsp, read_lspet
from lightning_pose.data.skeleton import FLIC_SKELETON, LSP_SKELETON


def test_read_lspet_real(shared_data: Path) -> None:
    ann = read_lspet(shared_data / "lspet")
    assert len(ann) == 9000
    assert ann.keypoints_px.shape == (9000, 14, 2)
    assert ann.visible.shape == (9000, 14) and ann.visible.dtype == bool
    assert 0.85 < ann.visible.mean() < 0.91  # README: 88 % visible
    # LSPet's unlabelled joints are placeholders such as (0, -26): labelled == visible
    np.testing.assert_array_equal(ann.labelled, ann.visible)
    assert ann.image_paths[0].name == "im00001.jpg" and ann.image_paths[-1].name == "im09000.jpg"
    assert ann.image_paths[0].is_file()
    raw = scipy.io.loadmat(shared_data / "lspet" / "joints.mat")["joints"]
    np.testing.assert_allclose(ann.keypoints_px[5, 3], raw[3, :2, 5] - 1, rtol=0, atol=1e-5)
    assert ann.skeleton is LSP_SKELETON and ann.is_train is None


def test_read_lsp_real_flag_is_inverted(shared_data: Path) -> None:
    ann = read_lsp(shared_data / "lsp")
    raw = scipy.io.loadmat(shared_data / "lsp" / "joints.mat")["joints"]  # (3, 14, 2000)
    assert ann.keypoints_px.shape == (2000, 14, 2)
    np.testing.assert_array_equal(ann.visible, (raw[2] == 0).T)
    assert 0.9 < ann.visible.mean() < 0.96  # README: 93 % visible
    # occluded joints are labelled: the LSP protocols score all 14 joints of every image
    assert ann.labelled.all() and ann.labelled.shape == (2000, 14)
    np.testing.assert_allclose(ann.keypoints_px[7, 12], raw[:2, 12, 7] - 1, rtol=0, atol=1e-5)
    assert ann.is_train.sum() == 1000 and ann.is_test[1000:].all()
    assert ann.image_paths[0].name == "im0001.jpg"


def test_read_flic_real(shared_data: Path) -> None:
    ann = read_flic(shared_data / "flic")
    assert len(ann) == 5003
    assert ann.is_train.sum() == 3987 and ann.is_test.sum() == 1016
    assert ann.keypoints_px.shape == (5003, FLIC_SKELETON.num_joints, 2)
    assert np.isfinite(ann.keypoints_px).all() and ann.visible.all() and ann.labelled.all()
    raw = scipy.io.loadmat(shared_data / "flic" / "examples.mat")["examples"][0, 0]
    # joint 7 of our FLIC skeleton (right hip) is FLIC toolkit coordinate 10 (1-based)
    np.testing.assert_allclose(ann.keypoints_px[0, 7], raw["coords"][:, 9] - 1, atol=1e-4, rtol=0)
    assert ann.box_px.shape == (5003, 4)
    assert ann.image_paths[0].parts[-2:] == ("images", str(raw["filepath"].item()))


def test_missing_annotation_file_names_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"lspet/joints.mat.*Expected layout"):
        read_lspet(tmp_path / "lspet")


@pytest.mark.parametrize(
    ("reader", "shape", "expected"),
    [(read_lspet, (3, 14, 5), r"expected \(14, 3, N\)"), (read_lsp, (14, 3, 5), r"\(3, 14, N\)")],
)
def test_joints_mat_of_wrong_shape(tmp_path: Path, reader, shape, expected: str) -> None:
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": np.zeros(shape)})
    with pytest.raises(DatasetError, match=rf"joints.mat: 'joints' has shape .*{expected}"):
        reader(tmp_path)


def test_joints_mat_without_joints_key(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "joints.mat", {"poses": np.zeros((14, 3, 2))})
    with pytest.raises(DatasetError, match=r"expected a variable 'joints', found \['poses'\]"):
        read_lspet(tmp_path)


def test_unreadable_mat_file(tmp_path: Path) -> None:
    (tmp_path / "joints.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match=r"joints.mat: cannot be read as a MATLAB .mat file"):
        read_lspet(tmp_path)


@pytest.mark.parametrize(
    ("reader", "folder", "key", "joints"),
    [(read_lspet, "lspet", "joints", np.array([[[1.0, 1.0, 1.0]] * 14] * 2).transpose(1, 2, 0)),
     (read_lsp, "lsp", "joints", np.array([[[1.0, 1.0, 0.0]] * 14] * 2).transpose(2, 1, 0))],
)  # fmt: skip
def test_nan_on_a_labelled_joint_names_example_and_joint(
    tmp_path: Path, reader, folder: str, key: str, joints: np.ndarray
) -> None:
    joints = joints.copy()
    if folder == "lspet":
        joints[4, 0, 1] = np.nan  # (joint, x/y/flag, image): joint 4 of example 1
    else:
        joints[0, 4, 1] = np.nan  # (x/y/flag, joint, image)
    (tmp_path / folder).mkdir()
    scipy.io.savemat(tmp_path / folder / "joints.mat", {key: joints})
    image = "im00002.jpg" if folder == "lspet" else "im0002.jpg"
    with pytest.raises(
        DatasetError,
        match=rf"joints.mat: example 1 \(0-based; image {image}\) has a non-finite coordinate "
        r"\[nan, 0.0\] on labelled joint 4 \(left_knee\)",
    ):
        reader(tmp_path / folder)


@pytest.mark.parametrize(
    ("reader", "folder", "layout"),
    [(read_lspet, "lspet", (14, 3, 2)), (read_lsp, "lsp", (3, 14, 2))],
)
@pytest.mark.parametrize("flag", [np.nan, 2.0, 0.5])
def test_visibility_flag_other_than_0_or_1_names_example_and_joint(
    tmp_path: Path, reader, folder: str, layout: tuple[int, int, int], flag: float
) -> None:
    """A NaN flag would otherwise read as "not labelled" (LSPet) without a word."""
    joints = np.ones(layout)
    if folder == "lspet":
        joints[13, 2, 1] = flag  # (joint, x/y/flag, image)
    else:
        joints[2, 13, 1] = flag  # (x/y/flag, joint, image)
    (tmp_path / folder).mkdir()
    scipy.io.savemat(tmp_path / folder / "joints.mat", {"joints": joints})
    with pytest.raises(
        DatasetError,
        match=rf"joints.mat: example 1 \(0-based; image im0+2.jpg\) has visibility flag "
        rf"{flag} on joint 13 \(head_top\); 1 such flags in all. Expected 0 or 1",
    ):
        reader(tmp_path / folder)


def test_nan_on_an_unlabelled_lspet_joint_is_a_placeholder(tmp_path: Path) -> None:
    joints = np.ones((14, 3, 2))
    joints[4, :, 1] = (np.nan, np.nan, 0.0)  # not labelled: a placeholder, read as 0
    (tmp_path / "lspet").mkdir()
    scipy.io.savemat(tmp_path / "lspet" / "joints.mat", {"joints": joints})
    ann = read_lspet(tmp_path / "lspet")
    assert not ann.labelled[1, 4] and np.isfinite(ann.keypoints_px).all()


def test_absolute_paths_need_no_data_root(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader whose paths are all absolute reads with no data root at all (docs/DATA.md);
    one relative path and the missing root is named as before."""
    from lightning_pose.data import COCOKeypoints, PoseDataModule
    from lightning_pose.data.datamodule import DATA_ROOT_ENV

    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # the default root, ../shared/data, does not exist from here
    data = PoseDataModule(LSPet(folder=str(shared_data / "lspet")), num_workers=0)
    assert len(data.load_annotations()) == 9000
    mini = shared_data / "coco_mini"
    coco = COCOKeypoints(
        train_json=str(mini / "annotations/person_keypoints_train2017.json"),
        val_json=str(mini / "annotations/person_keypoints_train2017.json"),
        image_dir=str(mini / "train2017"),
    )
    data = PoseDataModule(coco, root="/nonexistent/root", num_workers=0)
    assert len(data.load_annotations()) == 2 * 86
    assert data.load_annotations().image_paths[0] == mini / "train2017" / "000000535506.jpg"
    coco.image_dir = "coco_mini/train2017"
    with pytest.raises(DatasetError, match=r"data root /nonexistent/root \(from data.root\)"):
        PoseDataModule(coco, root="/nonexistent/root", num_workers=0).load_annotations()
