"""The dataset is a reader object: LSPet, LSP and FLIC give the samples they gave before.

The digests below were computed from the samples of the string-switch implementation (commit
31220f7, ``PoseDataModule(dataset="lspet")`` with ``box_mode``), with the same inputs as
here: the first 3 instances of each split at 64 px (training ones augmented, each seeded with
1000 + its position), and 2 validation instances at 32 px with ``highres_factor=2`` and cached
crops. A digest covers every tensor of the sample (the keys the old samples had), so an equal
digest is the same sample bit for bit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.data import FLIC, LSP, DatasetError, LSPet, PoseDataModule, PoseReader
from lightning_pose.data.sampling import SeededAugmentation
from lightning_pose.data.skeleton import FLIC_SKELETON, LSP_SKELETON

OLD_KEYS = (
    "box",
    "head_size_px",
    "image",
    "image_hr",
    "index",
    "keypoints_norm",
    "keypoints_px",
    "labelled",
    "torso_diameter_px",
    "visible",
)
GOLDEN = {
    "lspet": {
        "train": ["911f45596075cea3", "38a104d0110fff8f", "27ae4eacce8f4a2b"],
        "val": ["dab1ad23ee2220ed", "5626f9c6c73534f7", "3e0e8e92320c4be0"],
        "test": ["dab1ad23ee2220ed", "5626f9c6c73534f7", "3e0e8e92320c4be0"],
        "val_hr_cached": ["777329a9f5007e09", "4dafd63b023862fc"],
    },
    "lsp": {
        "train": ["cca537ce921281e5", "4f53ef67c52acce9", "174169fff087d4a5"],
        "val": ["52e3b04f6071ee56", "91c28b7a053e6959", "84180c00afb2e383"],
        "test": ["7dc5d529f554bd54", "c9a741f039c38730", "35c14f983695b0f6"],
        "val_hr_cached": ["6fdcc5dbf61b40ec", "c66ecc05c51ae118"],
    },
    "flic": {
        "train": ["853a41028c2204f5", "fe30c79fd0ae338d", "9a30af78b881189a"],
        "val": ["7ac7c1c9cbe77497", "36a03c1b4d500c54", "67bb3e344f355a48"],
        "test": ["241d2298e4331a96", "e8893ebeaa522db9", "ced72f7592e7b4c9"],
        "val_hr_cached": ["ead460270d739545", "2b5ef985b9ac2e8c"],
    },
}


def digest(sample: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(set(OLD_KEYS) & set(sample)):
        h.update(key.encode())
        h.update(sample[key].numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    ("name", "reader"), [("lspet", LSPet()), ("lsp", LSP()), ("flic", FLIC(torso_box_scale=3.0))]
)
def test_reader_objects_give_the_old_samples_bit_for_bit(
    name: str, reader: PoseReader, shared_data: Path, tiny_root: Path
) -> None:
    root = shared_data if name == "lspet" else tiny_root  # real LSPet images; generated others
    dm = PoseDataModule(dataset=reader, root=str(root), input_size=64, max_samples=3)
    for split in ("train", "val", "test"):
        dataset = dm.make_split(split, augment=split == "train")
        got = [digest(SeededAugmentation(dataset)[(i, 1000 + i)]) for i in range(len(dataset))]
        assert got == GOLDEN[name][split], split
    dm = PoseDataModule(
        dataset=reader,
        root=str(root),
        input_size=32,
        max_samples=2,
        highres_factor=2,
        cache_images=True,
    )
    dataset = dm.make_split("val", augment=False)
    assert [digest(dataset[i]) for i in range(len(dataset))] == GOLDEN[name]["val_hr_cached"]


def test_fixed_skeletons_need_no_files(tmp_path: Path) -> None:
    assert LSPet().skeleton(tmp_path) == LSP_SKELETON
    assert LSP().skeleton(tmp_path) == LSP_SKELETON
    assert FLIC().skeleton(tmp_path) == FLIC_SKELETON
    assert PoseDataModule(dataset=FLIC(), root=str(tmp_path)).skeleton == FLIC_SKELETON


def test_flic_box_is_the_scaled_square_around_the_torso_box(shared_data: Path) -> None:
    """Known answer from the first example's official torso box (1-based MATLAB pixels)."""
    import scipy.io

    raw = scipy.io.loadmat(shared_data / "flic" / "examples.mat")["examples"].ravel()[0]
    x1, y1, x2, y2 = np.asarray(raw["torsobox"], np.float64).ravel() - 1.0
    box = FLIC(torso_box_scale=2.0).read(shared_data).box_px[0]
    expected = np.array([(x1 + x2) / 2, (y1 + y2) / 2, 2 * (y2 - y1), 2 * (y2 - y1)])
    np.testing.assert_allclose(box, expected, rtol=0, atol=1e-4)


def test_a_string_is_not_a_reader() -> None:
    with pytest.raises(DatasetError, match=r"data.dataset: expected a reader object.*'lspet'"):
        PoseDataModule(dataset="lspet")  # type: ignore[arg-type]


def test_the_reader_is_recorded_in_plain_types(tmp_path: Path) -> None:
    """Outside the CLI too, the datamodule's hyperparameters hold the reader as its config, so
    checkpoints load with ``weights_only=True``."""
    import torch

    from lightning_pose.data import COCOKeypoints

    reader = COCOKeypoints("a.json", "b.json", "img", torso=("l", "r"), name="mine")
    dm = PoseDataModule(dataset=reader, root=str(tmp_path))
    expected_args = {"train_json": "a.json", "val_json": "b.json", "image_dir": "img"}
    recorded = dm.hparams["dataset"]
    assert recorded["class_path"] == "lightning_pose.data.coco.COCOKeypoints"
    assert recorded["init_args"].items() >= (expected_args | {"name": "mine"}).items()
    assert recorded["init_args"]["torso"] == ["l", "r"]
    torch.save({"hp": dict(dm.hparams)}, tmp_path / "hp.pt")
    loaded = torch.load(tmp_path / "hp.pt", weights_only=True)
    assert loaded["hp"]["dataset"] == recorded
