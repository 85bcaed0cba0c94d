"""PredictSource: what predict reads (``data.predict``), checked by the data module."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from lightning_pose.data import DatasetError, LSPet, PoseDataModule, PredictSource
from tests.conftest import write_image, write_lspet


def test_a_folder_or_a_video_not_both() -> None:
    with pytest.raises(
        ValueError, match=r"data.predict.video and data.predict.image_dir: give one"
    ):
        PredictSource(image_dir="photos", video="clip.mp4").check()


@pytest.mark.parametrize(
    ("boxes", "named"),
    [(None, ""), ("dets.json", " (data.predict.boxes=dets.json names its images)")],
)
def test_neither_a_folder_nor_a_video_is_refused(boxes: str | None, named: str) -> None:
    with pytest.raises(DatasetError) as error:
        PredictSource(boxes=boxes).check()
    assert str(error.value) == (
        "data.predict needs data.predict.image_dir (a folder of images) or data.predict.video "
        f"(a video file){named}; leave data.predict unset to predict the test split"
    )


def test_the_data_module_refuses_a_source_without_images() -> None:
    with pytest.raises(DatasetError, match=r"^data.predict needs data.predict.image_dir"):
        PoseDataModule(LSPet(), predict=PredictSource(boxes="dets.json"))


def test_defaults() -> None:
    source = PredictSource(image_dir="photos")
    assert (source.video, source.boxes, source.bbox_scale) == (None, None, 1.25)


def test_the_data_module_reads_the_folder_and_records_plain_hyperparameters(
    tmp_path: Path,
) -> None:
    """``predict`` lists the source's folder; the data module's hyperparameters hold the source
    as a plain dict, which a ``weights_only`` checkpoint load reads back."""
    write_lspet(tmp_path / "lspet", 4)
    folder = tmp_path / "photos"
    for k, name in enumerate(["b.png", "a.png"]):
        write_image(folder / name, 20, 30, seed=k)
    source = PredictSource(image_dir=str(folder), bbox_scale=1.5)
    data = PoseDataModule(LSPet(), root=str(tmp_path), num_workers=0, predict=source)
    assert data.predict is source
    data.setup("predict")
    assert [p.name for p in data.predict_image_paths()] == ["a.png", "b.png"]
    expected = {"image_dir": str(folder), "video": None, "boxes": None, "bbox_scale": 1.5}
    assert data.hparams["predict"] == expected
    buffer = io.BytesIO()
    torch.save(dict(data.hparams), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["predict"] == expected


def test_without_a_source_predict_reads_the_test_split(tmp_path: Path) -> None:
    write_lspet(tmp_path / "lspet", 20)
    data = PoseDataModule(LSPet(), root=str(tmp_path), num_workers=0)
    data.setup("predict")
    assert data.hparams["predict"] is None
    assert [p.name for p in data.predict_image_paths()] == [f"im{i:05d}.jpg" for i in range(1, 21)]
    assert len(data.splits["predict"]) == 2  # im00010, im00020: LSPet's validation = test
