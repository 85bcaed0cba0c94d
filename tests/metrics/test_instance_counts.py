"""What ``count/images`` and ``count/instances`` count: distinct images and people, on a COCO
file with several people per image, however the samples are batched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_pose.data import COCOKeypoints, PoseDataset
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics
from tests.conftest import write_image


def five_people_in_three_images(folder: Path) -> COCOKeypoints:
    images = [{"id": i, "file_name": f"{i}.png", "width": 40, "height": 30} for i in (4, 5, 6)]
    people = [(1, 4), (2, 5), (3, 4), (4, 6), (5, 4)]  # (annotation id, image id): 3 in image 4
    anns = [
        {
            "id": a, "image_id": i, "category_id": 7, "iscrowd": 0, "area": 30.0,
            "bbox": [2.0, 4.0, 8.0, 6.0], "keypoints": [5.5, 6.5, 2, 8.5, 9.5, 2],
        }
        for a, i in people
    ]  # fmt: skip
    category = {"id": 7, "name": "critter", "keypoints": ["paw_L", "paw_R"]}
    (folder / "c.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [category]})
    )
    for image in images:
        write_image(folder / "img" / image["file_name"], 40, 30, seed=image["id"])
    return COCOKeypoints(
        train_json="c.json", val_json="c.json", image_dir="img", oks_sigmas=[0.1, 0.1]
    )


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_images_count_distinct_images_and_instances_count_people(
    tmp_path: Path, batch_size: int
) -> None:
    annotations = five_people_in_three_images(tmp_path).read(tmp_path)
    indices = torch.nonzero(torch.from_numpy(annotations.is_val))[:, 0].numpy()[::-1].copy()
    dataset = PoseDataset(annotations, indices, 32)  # reversed: firsts are not the file's
    assert [bool(dataset[i]["first_of_image"]) for i in range(5)] == [1, 1, 0, 1, 0]
    skeleton: Skeleton = annotations.skeleton
    metrics = StageMetrics(skeleton, EvaluationProtocol())
    for batch in DataLoader(dataset, batch_size=batch_size):
        metrics.update(batch["keypoints_px"], batch)
    counts = metrics.counts()
    torch.testing.assert_close(counts["count/instances"], torch.tensor(5.0), atol=0, rtol=0)
    torch.testing.assert_close(counts["count/images"], torch.tensor(3.0), atol=0, rtol=0)
