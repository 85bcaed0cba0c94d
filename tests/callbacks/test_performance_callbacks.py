"""ChannelsLast (same results, NHWC weights and images) and WallClock (the time axis of the
accuracy-against-CPU-time curves) in real fits on generated images."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lightning_pose.callbacks import ChannelsLast
from lightning_pose.cli import main
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]


def test_convert_batch_makes_images_nhwc_and_leaves_the_rest() -> None:
    batch = {"image": torch.rand(2, 3, 8, 8), "image_hr": torch.rand(2, 3, 16, 16)}
    batch["keypoints_norm"] = keypoints = torch.rand(2, 14, 2)
    values = {k: v.clone() for k, v in batch.items()}
    ChannelsLast.convert_batch(batch)
    for key in ("image", "image_hr"):
        assert batch[key].is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch[key], values[key])
    assert batch["keypoints_norm"] is keypoints


def fit_and_validate(root: Path, extra: list[str]):
    common = ["-c", str(REPO / "conf" / "lspet.yaml"), *tiny_args(root, max_samples=None)]
    fit = main(
        [
            "fit",
            *common,
            "--trainer.devices=1",
            "--trainer.max_steps=4",
            "--trainer.val_check_interval=2",
            "--trainer.limit_val_batches=2",
            "--trainer.log_every_n_steps=1",
            "--trainer.callbacks+=lightning_pose.callbacks.WallClock",
            *extra,
        ]
    )
    return fit, common


def test_channels_last_fit_and_validate_give_the_same_metrics(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fit, common = fit_and_validate(
        tiny_root, ["--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast"]
    )
    conv = fit.model.trunk.net.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    last = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    scores = []
    for extra in ([], ["--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast"]):
        cli = main(["validate", *common, "--trainer.devices=1", f"--ckpt_path={last}", *extra])
        scores.append({k: float(v) for k, v in cli.trainer.callback_metrics.items()})
    plain, nhwc = scores
    assert plain.keys() == nhwc.keys() and "val/pdj@0.2/limb_joints" in plain
    for key, value in plain.items():
        assert nhwc[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_wall_clock_logs_time_and_images_at_every_validation(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fit, _ = fit_and_validate(tiny_root, [])
    rows = list(csv.DictReader(open(Path(fit.trainer.log_dir) / "metrics.csv")))
    timed = [r for r in rows if r.get("time/fit_s")]
    assert len(timed) == 2  # validations after steps 2 and 4
    seconds = [float(r["time/fit_s"]) for r in timed]
    assert 0 < seconds[0] < seconds[1]
    assert [float(r["time/train_images"]) for r in timed] == [2 * 2, 4 * 2]  # steps x batch 2
    assert all(r.get("val/pdj@0.2/limb_joints") for r in timed)
    state = torch.load(
        Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt", map_location="cpu",
        weights_only=True,
    )  # fmt: skip
    saved = next(v for k, v in state["callbacks"].items() if k.startswith("WallClock"))
    assert saved["elapsed_s"] >= seconds[1]  # a resumed run's clock continues from here
