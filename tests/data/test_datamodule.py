"""PoseDataModule: deterministic splits, the data root, loaders and seeded augmentation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from lightning_pose.data.datamodule import (
    DATA_ROOT_ENV,
    PoseDataModule,
    resolve_data_root,
    split_indices,
)
from lightning_pose.data.dataset import PoseDataset
from lightning_pose.data.readers import DatasetError, LSPet, read_flic, read_lsp, read_lspet
from tests.conftest import TINY_SAMPLES


def assert_partition(splits: dict[str, np.ndarray], n: int, has_test: bool) -> None:
    train, val = splits["train"], splits["val"]
    assert np.intersect1d(train, val).size == 0
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # file order, no repeats
    if has_test:
        assert np.intersect1d(train, splits["test"]).size == 0
        assert np.intersect1d(val, splits["test"]).size == 0
    covered = np.union1d(np.union1d(train, val), splits["test"])
    np.testing.assert_array_equal(covered, np.arange(n))


def test_lspet_split_every_tenth_image_is_val_and_test(shared_data: Path) -> None:
    ann = read_lspet(shared_data / "lspet")
    splits = split_indices(ann, val_every=10)
    np.testing.assert_array_equal(splits["val"], np.arange(9, 9000, 10))  # im00010, im00020 ...
    assert ann.image_paths[splits["val"][0]].name == "im00010.jpg"
    np.testing.assert_array_equal(splits["test"], splits["val"])
    assert len(splits["train"]) == 8100
    assert_partition(splits, 9000, has_test=False)
    again = split_indices(read_lspet(shared_data / "lspet"), val_every=10)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(again[name], splits[name])


def test_lsp_split_keeps_official_test_and_holds_out_val_from_train(shared_data: Path) -> None:
    splits = split_indices(read_lsp(shared_data / "lsp"), val_every=10)
    np.testing.assert_array_equal(splits["test"], np.arange(1000, 2000))  # im1001 ... im2000
    np.testing.assert_array_equal(splits["val"], np.arange(9, 1000, 10))
    assert len(splits["train"]) == 900
    assert_partition(splits, 2000, has_test=True)


def test_flic_split_keeps_official_test_and_holds_out_val_from_train(shared_data: Path) -> None:
    ann = read_flic(shared_data / "flic")
    splits = split_indices(ann, val_every=10)
    np.testing.assert_array_equal(splits["test"], np.flatnonzero(ann.is_test))
    train_pool = np.flatnonzero(ann.is_train)
    np.testing.assert_array_equal(splits["val"], train_pool[9::10])
    assert ann.is_train[splits["val"]].all() and ann.is_train[splits["train"]].all()
    assert len(splits["val"]) == 398 and len(splits["train"]) == 3987 - 398
    assert_partition(splits, 5003, has_test=True)


def test_val_every_below_two_is_rejected(shared_data: Path) -> None:
    with pytest.raises(ValueError, match="data.val_every must be >= 2, got 1"):
        split_indices(read_lsp(shared_data / "lsp"), val_every=1)


def test_datamodule_max_samples_keeps_the_first_of_each_split(shared_data: Path) -> None:
    dm = PoseDataModule(LSPet(), root=str(shared_data), input_size=32, max_samples=3, num_workers=0)
    dm.setup("fit")
    np.testing.assert_array_equal(dm.splits["train"].indices, [0, 1, 2])
    np.testing.assert_array_equal(dm.splits["val"].indices, [9, 19, 29])
    assert dm.splits["train"].augmentation is not None
    assert dm.splits["val"].augmentation is None
    assert dm.joint_names[9] == "left_shoulder" and len(dm.joint_names) == 14


def test_explicit_root_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "from_env"))
    assert resolve_data_root(str(tmp_path)) == tmp_path


def test_env_var_is_used_when_root_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "from_env").mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "from_env"))
    assert resolve_data_root(None) == tmp_path / "from_env"


def test_missing_root_names_path_and_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(DATA_ROOT_ENV, str(missing))
    with pytest.raises(
        DatasetError, match=rf"{re.escape(str(missing))}.*from {DATA_ROOT_ENV}.*{DATA_ROOT_ENV}"
    ):
        resolve_data_root(None)
    with pytest.raises(
        DatasetError, match=rf"{re.escape(str(missing))}.*from data.root.*{DATA_ROOT_ENV}"
    ):
        resolve_data_root(str(missing))


def test_default_root_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"shared/data \(from the default data root\)"):
        resolve_data_root(None)


def test_missing_image_folder_is_named(tiny_root: Path) -> None:
    images = tiny_root / "lspet" / "images"
    images.rename(tiny_root / "lspet" / "moved")
    dm = PoseDataModule(LSPet(), root=str(tiny_root), max_samples=TINY_SAMPLES, num_workers=0)
    with pytest.raises(DatasetError, match=rf"lspet images not found: .*{re.escape(str(images))}"):
        dm.setup("fit")


def test_unaugmented_train_dataloader_spreads_over_the_split(tiny_root: Path) -> None:
    """What the cascade measures its error statistics on: evenly spread training images, the
    first and last included, unaugmented (the same sample twice), high-resolution view too."""
    dm = PoseDataModule(
        LSPet(), root=str(tiny_root), max_samples=TINY_SAMPLES, num_workers=0, batch_size=4,
        input_size=32, highres_factor=2,
    )  # fmt: skip
    train = dm.split_indices("train")
    loader = dm.unaugmented_train_dataloader(3)
    positions = loader.dataset.indices
    assert len(positions) == 3 and positions[0] == 0 and positions[-1] == len(train) - 1
    assert positions[0] < positions[1] < positions[2]
    first, again = next(iter(loader)), next(iter(loader))
    torch.testing.assert_close(first["image"], again["image"], rtol=0, atol=0)  # no augmentation
    assert first["image"].shape[-1] == 32 and first["image_hr"].shape[-1] == 64
    assert len(dm.unaugmented_train_dataloader(10_000).dataset) == len(train)
    with pytest.raises(ValueError, match="max_images must be >= 1, got 0"):
        dm.unaugmented_train_dataloader(0)


# --- seeded augmentation across DataLoader workers ------------------------------------------


def repeated_image_loader(shared_data: Path, num_workers: int, seed: int) -> list[dict]:
    """The train loader over one LSPet image repeated 4 times, one sample per batch.

    With identical inputs, any difference between samples is the augmentation's doing.
    """
    pl.seed_everything(seed, verbose=False)
    dm = PoseDataModule(
        LSPet(), root=str(shared_data), input_size=32, batch_size=1, num_workers=num_workers
    )
    ann = dm.load_annotations()
    dm.splits["train"] = PoseDataset(ann, np.zeros(4, np.int64), 32, augmentation=dm.augmentation)
    loader = dm.train_dataloader()
    batches = list(loader)
    del loader  # ends the persistent workers
    return batches


def keypoints(batches: list[dict]) -> torch.Tensor:
    return torch.cat([b["keypoints_norm"] for b in batches])  # (4, K, 2)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_seeded_run_repeats_and_every_sample_is_augmented_differently(
    shared_data: Path, num_workers: int
) -> None:
    first = repeated_image_loader(shared_data, num_workers, seed=0)
    second = repeated_image_loader(shared_data, num_workers, seed=0)
    other_seed = repeated_image_loader(shared_data, num_workers, seed=1)
    torch.testing.assert_close(keypoints(first), keypoints(second), rtol=0, atol=0)
    torch.testing.assert_close(
        torch.cat([b["image"] for b in first]),
        torch.cat([b["image"] for b in second]),
        rtol=0,
        atol=0,
    )
    assert not torch.allclose(keypoints(first), keypoints(other_seed), atol=1e-3)
    # All four draws of the same image differ. With two workers, batches 0 and 2 come from
    # worker 0 and batches 1 and 3 from worker 1: worker 1's first sample must not repeat
    # worker 0's (forked workers copying one albumentations generator would make them equal).
    kp = keypoints(first)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(kp[a], kp[b], atol=1e-3), (a, b)


# --- the views the model reads ----------------------------------------------------------------


class AsksForHighres:
    image_hr_factor = 3


@pytest.mark.parametrize(
    ("given", "model", "served"),
    [(None, object(), 1), (None, AsksForHighres(), 3), (4, AsksForHighres(), 4), (2, object(), 2)],
)
def test_highres_factor_follows_the_model_unless_given(
    tiny_root: Path, given: int | None, model: object, served: int
) -> None:
    dm = PoseDataModule(LSPet(), root=str(tiny_root), max_samples=TINY_SAMPLES, num_workers=0,
                        input_size=16, highres_factor=given)  # fmt: skip
    assert dm.match_model(model) == served and dm.highres_factor == served
    sample = dm.make_split("val", augment=False)[0]
    if served == 1:
        assert "image_hr" not in sample
    else:
        assert sample["image_hr"].shape[-1] == 16 * served


def test_highres_factor_below_the_models_is_refused(tiny_root: Path) -> None:
    dm = PoseDataModule(LSPet(), root=str(tiny_root), highres_factor=2)
    with pytest.raises(ValueError, match=r"data.highres_factor=2, but AsksForHighres reads "
                       r"image_hr at 3x .* set it to 3"):  # fmt: skip
        dm.match_model(AsksForHighres())
    with pytest.raises(ValueError, match="data.highres_factor must be >= 1 or unset, got 0"):
        PoseDataModule(LSPet(), root=str(tiny_root), highres_factor=0)
