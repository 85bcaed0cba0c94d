"""COCO keypoint JSON through the CLI on the real coco_mini: a smoke fit, validate (OKS AP and
bbox-PCK), predict with the annotations' person boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main

REPO = Path(__file__).resolve().parents[1]


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
    assert metrics["val/count/images"] == 8
    out = tmp_path / "pred"
    main(["predict", *common, f"--ckpt_path={last}", f"--trainer.callbacks.output_dir={out}"])
    predictions = np.load(out / "predictions.npz")
    assert predictions["keypoints_px"].shape == (8, 17, 2)
