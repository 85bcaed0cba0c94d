"""COCO keypoint JSON under two gloo processes through the CLI: validation scores each of an
odd number of instances once, and OKS AP and bbox-PCK equal the one-process run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.gloo import requires_gloo
from tests.test_ddp import REPO, run_cli

INSTANCES = 7  # odd: Lightning's default sampler would repeat one
IMAGES = 5  # distinct images of the first 7 instances of coco_mini


@requires_gloo
def test_coco_validate_under_two_processes_equals_one(shared_data: Path, tmp_path: Path) -> None:
    common = [
        "validate",
        "-c",
        str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.root={shared_data}",
        "--data.input_size=64",
        "--data.batch_size=2",
        "--data.num_workers=0",
        f"--data.max_samples={INSTANCES}",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.accelerator=cpu",
        "--evaluation.pck_bbox_thresholds=[0.2, 0.5, 1.0]",
    ]
    results = {}
    for name, extra in (
        ("one", ["--trainer.devices=1"]),
        ("two", ["--trainer.devices=2", "--trainer.strategy=ddp"]),
    ):
        cwd = tmp_path / name
        cwd.mkdir()
        run_cli([*common, *extra], cwd)
        with open(cwd / "runs" / "coco_mini" / "version_0" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        results[name] = {
            k: float(v) for row in rows for k, v in row.items() if k.startswith("val/") and v
        }
    one, two = results["one"], results["two"]
    assert one["val/count/instances"] == two["val/count/instances"] == INSTANCES
    # the 7 people are in 5 images, however the two processes share them
    assert one["val/count/images"] == two["val/count/images"] == IMAGES
    assert {"val/oks_ap", "val/oks_ar", "val/pck_bbox@1"} <= set(one)
    assert one["val/pck_bbox@1"] > 0  # a random model, but a whole box away is reachable
    assert sorted(one) == sorted(two)
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
