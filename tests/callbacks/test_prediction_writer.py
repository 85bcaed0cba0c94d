"""PredictionWriter: the predictions file in input order, shards of several processes merged
with each image once, overlays (names, clashes, failed writes) and the checks before predict."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from lightning_pose.callbacks import PredictionWriter
from lightning_pose.callbacks.prediction_writer import (
    check_writable,
    merge_shards,
    overlay_names,
)
from lightning_pose.data.dataset import load_image
from lightning_pose.data.skeleton import LSP_SKELETON
from tests.conftest import write_image


def stub_predict_trainer(paths: list[Path], world_size: int = 1, rank: int = 0):
    """The attributes PredictionWriter reads from a Trainer (no process group)."""
    datamodule = SimpleNamespace(predict_image_paths=lambda: paths, skeleton=LSP_SKELETON)
    return SimpleNamespace(
        datamodule=datamodule, world_size=world_size, global_rank=rank, is_global_zero=rank == 0
    )


def keypoints(i: int) -> torch.Tensor:
    """Every joint of image i at (10 + i, 12): (K, 2) pixels."""
    return torch.tensor([10.0 + i, 12.0]).repeat(LSP_SKELETON.num_joints, 1)


def predictions() -> list[dict[str, torch.Tensor]]:
    """Two batches out of order: images 2, 0 then 1."""
    return [
        {"index": torch.tensor([2, 0]), "keypoints_px": torch.stack([keypoints(2), keypoints(0)])},
        {"index": torch.tensor([1]), "keypoints_px": keypoints(1)[None]},
    ]


def frames(folder: Path, n: int = 3) -> list[Path]:
    paths = [folder / f"frame{i}.png" for i in range(n)]
    for i, path in enumerate(paths):
        write_image(path, 40, 30, seed=i)
    return paths


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "per-dataloader"])
def test_prediction_writer_sorts_by_index_and_names_images(tmp_path: Path, nested: bool) -> None:
    paths = frames(tmp_path / "images")
    writer = PredictionWriter(output_dir=str(tmp_path / "out"), draw_overlays=True)
    outputs = [predictions()] if nested else predictions()
    writer.write_on_epoch_end(stub_predict_trainer(paths), None, outputs, [])
    result = np.load(tmp_path / "out" / "predictions.npz")
    assert list(result["names"]) == ["frame0.png", "frame1.png", "frame2.png"]
    assert result["keypoints_px"].shape == (3, LSP_SKELETON.num_joints, 2)
    for i in range(3):
        np.testing.assert_allclose(result["keypoints_px"][i, :, 0], 10.0 + i, rtol=0, atol=0)
        overlay = load_image(tmp_path / "out" / "overlays" / f"frame{i}.png")
        assert overlay.shape == (30, 40, 3)
        np.testing.assert_array_equal(overlay[12, 10 + i], [255, 40, 40])  # the joint dot


def test_merge_shards_puts_each_image_once_in_input_order() -> None:
    """Rank 0 predicted images 0, 2, 4; rank 1 images 3, 1 and, padded by a sampler, 0 again;
    rank 2 nothing."""

    def shard(index: list[int], offset: float) -> dict[str, np.ndarray]:
        kp = np.stack([keypoints(i).numpy() + offset for i in index])  # (n, K, 2)
        return {"index": np.array(index), "keypoints_px": kp, "scores": kp[..., 0]}

    merged = merge_shards([shard([0, 2, 4], 0.0), shard([3, 1, 0], 0.0), None])
    np.testing.assert_array_equal(merged["index"], [0, 1, 2, 3, 4])
    expected = np.stack([keypoints(i).numpy() for i in range(5)])
    np.testing.assert_allclose(merged["keypoints_px"], expected, rtol=0, atol=0)
    np.testing.assert_allclose(merged["scores"], expected[..., 0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="no predictions on any process"):
        merge_shards([None, None])


def test_only_rank_zero_writes_the_file_and_each_rank_its_overlays(tmp_path: Path) -> None:
    paths = frames(tmp_path / "images")
    writer = PredictionWriter(output_dir=str(tmp_path / "out"), draw_overlays=True)
    shard = [{"index": torch.tensor([1]), "keypoints_px": keypoints(1)[None]}]
    writer.write_on_epoch_end(stub_predict_trainer(paths, world_size=2, rank=1), None, shard, [])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["overlays"]
    assert [p.name for p in (tmp_path / "out" / "overlays").iterdir()] == ["frame1.png"]


def test_overlay_names_known_answers() -> None:
    one_frame_two_people = Path("f/shared.jpg")  # FLIC: one example per person in a frame
    paths = [Path("f/a.jpg"), one_frame_two_people, Path("f/b.png"), one_frame_two_people]
    assert overlay_names(paths) == ["a.png", "shared_1.png", "b.png", "shared_3.png"]
    with pytest.raises(
        ValueError,
        match=r"draw_overlays: 1 overlay files would be written by several images "
        r"\(\['x.jpg', 'x.png'\] -> overlays/x.png\)",
    ):
        overlay_names([Path("f/x.jpg"), Path("f/y.png"), Path("f/x.png")])


def test_failed_overlay_write_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = frames(tmp_path / "images")
    writer = PredictionWriter(output_dir=str(tmp_path / "out"), draw_overlays=True)
    monkeypatch.setattr(cv2, "imwrite", lambda *args: False)  # e.g. a full disk
    out = tmp_path / "out" / "overlays" / "frame0.png"
    with pytest.raises(OSError, match=rf"cv2.imwrite could not write the overlay {out}"):
        writer.write_on_epoch_end(stub_predict_trainer(paths), None, predictions(), [])


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "folder", "key")
    assert list((tmp_path / "new" / "folder").iterdir()) == []  # the probe file is gone
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match=r"key: cannot write to .*file/sub \(.*\); expected a"):
        check_writable(tmp_path / "file" / "sub", "key")


def test_setup_checks_only_on_predict(tmp_path: Path) -> None:
    """Every dataset config lists a PredictionWriter; fit must not create its folder."""
    paths = [tmp_path / "x.jpg", tmp_path / "x.png"]
    writer = PredictionWriter(output_dir=str(tmp_path / "out"), draw_overlays=True)
    writer.setup(stub_predict_trainer(paths), None, "fit")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="overlays/x.png"):
        writer.setup(stub_predict_trainer(paths), None, "predict")
    assert (tmp_path / "out").is_dir()  # checked writable first
