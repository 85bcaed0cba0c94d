"""COCO keypoint results (``predictions_coco.json``) carry the dataset's category: pycocotools
scores the package's results file against ground truth whose category id is 7 (not COCO's
person id 1) with the OKS AP the package computes itself (its ``val/oks_ap``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.callbacks import PredictionWriter
from lightning_pose.cli import main
from lightning_pose.data import COCOKeypoints, PoseDataModule, PredictSource
from lightning_pose.metrics.oks import OKSAveragePrecision

REPO = Path(__file__).resolve().parents[2]
MINI = "coco_mini/annotations/person_keypoints_train2017.json"
GROUND_TRUTH = "c7/annotations/person_keypoints.json"


def category_7_root(tmp_path: Path, shared_data: Path, images: int = 12) -> Path:
    """A data root with the first ``images`` images of the real coco_mini, their people
    re-filed under category id 7 (images linked, not copied)."""
    raw = json.loads((shared_data / MINI).read_text())
    kept = raw["images"][:images]
    ids = {image["id"] for image in kept}
    content = {
        "images": kept,
        "annotations": [dict(a, category_id=7) for a in raw["annotations"] if a["image_id"] in ids],
        "categories": [dict(c, id=7) for c in raw["categories"]],
    }
    root = tmp_path / "data"
    (root / GROUND_TRUTH).parent.mkdir(parents=True)
    (root / GROUND_TRUTH).write_text(json.dumps(content))
    os.symlink(shared_data / "coco_mini" / "train2017", root / "c7" / "images")
    return root


def pycocotools_ap(ground_truth: Path, results: list[dict]) -> float:
    """OKS AP of ``results`` on ``ground_truth`` by pycocotools alone (its person sigmas)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(ground_truth))
        evaluation = COCOeval(truth, truth.loadRes(results), iouType="keypoints")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def test_results_file_scores_as_the_package_scores_itself(
    tmp_path: Path, shared_data: Path
) -> None:
    """The predictions file of estimates near the truth (seeded noise of 3 px), written by the
    real ``PredictionWriter`` from the real data module: pycocotools' AP equals the package's
    OKS AP (the metric it logs as ``val/oks_ap``), and both are far from 0."""
    root = category_7_root(tmp_path, shared_data)
    reader = COCOKeypoints(train_json=GROUND_TRUTH, val_json=GROUND_TRUTH, image_dir="c7/images")
    data = PoseDataModule(reader, root=str(root), num_workers=0)
    assert data.skeleton.category_id == 7
    annotations = data.load_annotations()
    index = data.split_indices("test")  # (N,) the val file serves as test
    rng = np.random.default_rng(0)
    truth = annotations.keypoints_px[index]  # (N, K, 2)
    estimate = (truth + rng.normal(0.0, 3.0, truth.shape)).astype(np.float32)
    trainer = type(
        "Trainer",
        (),
        {"datamodule": data, "world_size": 1, "is_global_zero": True, "ckpt_path": None},
    )()
    writer = PredictionWriter(output_dir=str(tmp_path / "out"))
    batch = {"index": torch.from_numpy(index), "keypoints_px": torch.from_numpy(estimate)}
    writer.write_on_epoch_end(trainer, None, [batch], [])
    results = json.loads((tmp_path / "out" / "predictions_coco.json").read_text())
    assert {r["category_id"] for r in results} == {7}

    metric = OKSAveragePrecision(data.skeleton.oks_sigmas)
    metric.update(
        torch.from_numpy(estimate),
        {
            "keypoints_px": torch.from_numpy(truth),
            "labelled": torch.from_numpy(annotations.labelled[index]),
            "visible": torch.from_numpy(annotations.visible[index]),
            "area_px2": torch.from_numpy(annotations.area_px2[index]),
            "image_id": torch.from_numpy(annotations.image_ids[index]),
            "index": torch.from_numpy(index),
        },
    )
    package = float(metric.compute()["oks_ap"])
    assert 0.2 < package < 0.95  # a score that a wrong category (AP 0) cannot match
    torch.testing.assert_close(
        pycocotools_ap(root / GROUND_TRUTH, results), package, rtol=0, atol=1e-6
    )


def test_detections_keep_their_category(tmp_path: Path, shared_data: Path) -> None:
    """With boxes from a detections file, each result keeps its detection's category; a
    detection without one gets the dataset's."""
    root = category_7_root(tmp_path, shared_data, images=4)
    raw = json.loads((root / GROUND_TRUTH).read_text())
    people = [a for a in raw["annotations"] if a["num_keypoints"] > 0][:2]
    detections = [
        {"image_id": people[0]["image_id"], "bbox": people[0]["bbox"], "category_id": 3},
        {"image_id": people[1]["image_id"], "bbox": people[1]["bbox"]},
    ]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    reader = COCOKeypoints(train_json=GROUND_TRUTH, val_json=GROUND_TRUTH, image_dir="c7/images")
    data = PoseDataModule(
        reader,
        root=str(root),
        num_workers=0,
        predict=PredictSource(
            image_dir=str(root / "c7" / "images"), boxes=str(tmp_path / "dets.json")
        ),
    )
    data.setup("predict")
    image_ids, scores, categories = data.predict_records()
    np.testing.assert_array_equal(image_ids, [p["image_id"] for p in people])
    np.testing.assert_array_equal(categories, [3, 7])


def test_cli_predict_file_scores_as_validate_logs(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI, one model (seeded, untrained): ``validate``'s ``val/oks_ap`` equals
    pycocotools' AP of ``predict``'s ``predictions_coco.json`` on the category-7 file, whose
    results all carry category 7."""
    monkeypatch.chdir(tmp_path)
    root = category_7_root(tmp_path, shared_data, images=6)
    common = [
        "-c", str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.root={root}",
        f"--data.dataset.init_args.train_json={GROUND_TRUTH}",
        f"--data.dataset.init_args.val_json={GROUND_TRUTH}",
        "--data.dataset.init_args.image_dir=c7/images",
        "--data.input_size=64", "--data.batch_size=4", "--data.num_workers=0",
        "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.logger=false",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]  # fmt: skip
    validated = main(["validate", *common, f"--trainer.default_root_dir={tmp_path / 'val'}"])
    logged = float(validated.trainer.callback_metrics["val/oks_ap"])
    out = tmp_path / "pred"
    main(["predict", *common, f"--trainer.callbacks.output_dir={out}"])
    results = json.loads((out / "predictions_coco.json").read_text())
    assert len(results) > 0 and {r["category_id"] for r in results} == {7}
    torch.testing.assert_close(
        pycocotools_ap(root / GROUND_TRUTH, results), logged, rtol=0, atol=1e-6
    )
