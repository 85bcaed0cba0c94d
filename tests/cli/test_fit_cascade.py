"""The DeepPose cascade through the CLI on tiny data: depth 3 fit and predict, stage chaining."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main
from lightning_pose.cli.fit_cascade import fit_cascade
from lightning_pose.reports.tables import read_per_image
from tests.conftest import TINY_SAMPLES, write_image

REPO = Path(__file__).resolve().parents[2]
CASCADE = [
    "-c", str(REPO / "conf" / "lspet.yaml"),
    "-c", str(REPO / "conf" / "model" / "deeppose_cascade.yaml"),
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    f"--data.max_samples={TINY_SAMPLES}",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--data.input_size=32",
    "--model.init_args.samples_per_image=3",
    "--model.init_args.error_stats_images=4",
    "--model.trunk=lightning_pose.models.ResNetTrunk",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_depth3_fast_dev_run_and_predict(tiny_root: Path, tmp_path: Path) -> None:
    args = [*CASCADE, f"--data.root={tiny_root}", "--model.init_args.num_stages=3"]
    main(["fit", *args, "--trainer.fast_dev_run=true"])
    folder = tmp_path / "frames"
    for k in range(3):
        write_image(folder / f"f{k}.jpg", 40 + 10 * k, 30, seed=k)
    out = tmp_path / "pred"
    main(["predict", *args, f"--data.predict.image_dir={folder}",
          "--trainer.callbacks+=lightning_pose.callbacks.PredictionWriter",
          f"--trainer.callbacks.output_dir={out}"])  # fmt: skip
    result = np.load(out / "predictions.npz")
    assert list(result["names"]) == ["f0.jpg", "f1.jpg", "f2.jpg"]
    assert result["keypoints_px"].shape == (3, 14, 2)
    assert np.isfinite(result["keypoints_px"]).all()


def test_fit_cascade_chains_stages(tiny_root: Path, tmp_path: Path) -> None:
    args = [*CASCADE, f"--data.root={tiny_root}", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=1",
            "--trainer.limit_val_batches=1", "--trainer.val_check_interval=1.0"]  # fmt: skip
    checkpoints = fit_cascade(depth=2, cli_args=args)
    assert len(checkpoints) == 2 and all(Path(c).is_file() for c in checkpoints)
    stage2_dir = Path(checkpoints[1]).parents[1]
    stats = json.loads((stage2_dir / "error_statistics.json").read_text())
    assert stats["stage"] == 1 and np.array(stats["cov"]).shape == (14, 2, 2)
    curve = np.loadtxt(stage2_dir / "val_pdj_curve.csv", delimiter=",", skiprows=1)
    assert curve.shape == (51, 3)  # threshold, stage1, stage2
    assert (stage2_dir / "val_pdj_curve.png").stat().st_size > 0
    metrics = (stage2_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val/stage2/pdj@0.1" in metrics and "val/stage1/pdj@0.05" in metrics
    # Each stage's per-image scores, on the same images; pooled, they are the logged values.
    with (stage2_dir / "metrics.csv").open(newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("val/pdj@0.2")][-1]
    files = {1: "per_image_val_stage1.csv", 2: "per_image_val.csv"}
    per_image = {s: read_per_image(stage2_dir / name) for s, name in files.items()}
    assert np.array_equal(per_image[1].index, per_image[2].index)
    assert not (stage2_dir / "per_image_val_stage2.csv").exists()
    for stage, scores in per_image.items():
        sums, counts = scores.sums("pdj@0.2")
        assert counts.sum() > 0
        assert sums.sum() / counts.sum() == pytest.approx(
            float(logged[f"val/stage{stage}/pdj@0.2"]), abs=1e-6
        )
