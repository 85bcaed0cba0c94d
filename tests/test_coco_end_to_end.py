"""COCO keypoint JSON through the CLI on the real coco_mini: a smoke fit, validate (OKS AP and
bbox-PCK), predict with the annotations' person boxes, then with a detections file."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main

REPO = Path(__file__).resolve().parents[1]
MINI = "coco_mini/annotations/person_keypoints_train2017.json"


def test_coco_mini_fit_validate_predict(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    common = [
        "-c",
        str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.root={shared_data}",
        "--data.input_size=64",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--data.max_samples=8",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]
    fit = main(["fit", *common, "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}"])
    assert fit.trainer.global_step == 2  # 8 instances, batches of 4
    last = next(tmp_path.glob("runs/coco_mini/*/checkpoints/last.ckpt"))
    val = main(["validate", *common, f"--ckpt_path={last}"])
    metrics = {k: float(v) for k, v in val.trainer.callback_metrics.items()}
    for key in ("val/oks_ap", "val/oks_ap50", "val/oks_ap75", "val/oks_ar", "val/pck_bbox@0.2"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, f"{key}: {sorted(metrics)}"
    assert "val/pckh@0.5" not in metrics  # COCO has no head segment
    assert "val/pdj@0.2" in metrics  # the torso is derived from left_shoulder, right_hip
    # 8 people in 6 images: each count names what it counts
    assert metrics["val/count/instances"] == 8 and metrics["val/count/images"] == 6
    table = next(tmp_path.glob("runs/coco_mini/*/val_metrics.md")).read_text()
    assert "Counted: 6 images (8 instances)" in table
    out = tmp_path / "pred"
    main(["predict", *common, f"--ckpt_path={last}", f"--trainer.callbacks.output_dir={out}"])
    predictions = np.load(out / "predictions.npz")
    assert predictions["keypoints_px"].shape == (8, 17, 2)
    assert predictions["boxes_px"].shape == (8, 4)

    # predict on the image folder with person boxes from a COCO detections file
    raw = json.loads((shared_data / MINI).read_text())
    people = [a for a in raw["annotations"] if a["num_keypoints"] > 0][:3]
    detections = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.8} for a in people]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    out = tmp_path / "pred_boxes"
    main(
        [
            "predict",
            *common,
            f"--ckpt_path={last}",
            f"--data.predict.image_dir={shared_data / 'coco_mini' / 'train2017'}",
            f"--data.predict.boxes={tmp_path / 'dets.json'}",
            f"--trainer.callbacks.output_dir={out}",
        ]
    )
    predictions = np.load(out / "predictions.npz")
    assert list(predictions["names"]) == [f"{a['image_id']:012d}.jpg" for a in people]
    x, y, w, h = people[0]["bbox"]
    expected = [x + w / 2 - 0.5, y + h / 2 - 0.5, 1.25 * max(w, h), 1.25 * max(w, h)]
    np.testing.assert_allclose(predictions["boxes_px"][0], expected, rtol=1e-6, atol=1e-3)
    results = json.loads((out / "predictions_coco.json").read_text())
    assert [r["image_id"] for r in results] == [a["image_id"] for a in people]
    assert all(r["score"] == pytest.approx(0.8) and len(r["keypoints"]) == 51 for r in results)
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(shared_data / MINI))
        loaded = ground_truth.loadRes(results)  # a COCO tool reads it
    assert len(loaded.getAnnIds()) == 3


def test_coco_mini_stops_where_its_schedule_ends(shared_data: Path) -> None:
    """With the budget model the run stops at trainer.max_steps (3,000), the length its
    warm-up + cosine schedule takes, not after 50 epochs of 6 steps: the rate reaches its
    floor, 0, at the last step and not before."""
    cli = main(
        [
            "-c", str(REPO / "conf" / "coco_mini.yaml"),
            "-c", str(REPO / "conf" / "model" / "heatmap_budget.yaml"),
            f"--data.root={shared_data}", "--trainer.logger=false",
        ],
        run=False,
    )  # fmt: skip
    trainer, model = cli.trainer, cli.model
    assert trainer.max_epochs in (None, -1) and trainer.max_steps == 3000
    model.trainer = trainer
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(trainer.max_steps):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[-1] > 0 and rates[len(rates) // 2] > 1e-4
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
