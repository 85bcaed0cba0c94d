"""``predict`` under two gloo processes through the CLI writes one ``predictions.npz``, each
image once and in input order, equal to a one-process run's; no per-rank files are left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.cli import main
from tests.conftest import write_image
from tests.gloo import requires_gloo
from tests.test_ddp import run_cli

REPO = Path(__file__).resolve().parents[1]
# 5 images on 2 processes in batches of 2: uneven shards (3 and 2 images), so a sampler that
# pads the shorter shard would predict one image twice.
SIZES = [(50, 30), (31, 77), (64, 64), (40, 52), (90, 45)]


@requires_gloo
def test_predict_under_two_processes_writes_one_file_in_input_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "frames"
    names = [f"frame{k}.{'png' if k % 2 else 'jpg'}" for k in range(len(SIZES))]
    for k, (name, (w, h)) in enumerate(zip(names, SIZES, strict=True)):
        write_image(folder / name, w, h, seed=k)
    common = [
        "predict",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        f"--data.predict.image_dir={folder}",
        "--data.input_size=64",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--model.trunk=lightning_pose.models.ResNetTrunk",  # seeded: the same weights in each run
        "--trainer.accelerator=cpu",
        "--trainer.callbacks.draw_overlays=true",
    ]
    results = {}
    for run, extra in (
        ("one", ["--trainer.devices=1"]),
        ("two", ["--trainer.devices=2", "--trainer.strategy=ddp"]),
    ):
        cwd = tmp_path / run
        cwd.mkdir()
        args = [*common, *extra, f"--trainer.callbacks.output_dir={cwd / 'pred'}"]
        if run == "one":
            monkeypatch.chdir(cwd)
            main(args)
        else:
            run_cli(args, cwd)
        out = cwd / "pred"
        files = sorted(p.name for p in out.iterdir())
        assert files == ["overlays", "predictions.npz", "predictions_coco.json"]
        overlays = sorted(p.name for p in (out / "overlays").iterdir())
        assert overlays == sorted(f"{Path(n).stem}.png" for n in names)
        results[run] = dict(np.load(out / "predictions.npz"))
    one, two = results["one"], results["two"]
    assert list(one["names"]) == names  # sorted by file name, as list_images reads them
    assert list(two["names"]) == names
    assert one["keypoints_px"].shape == (len(SIZES), 14, 2)
    torch.testing.assert_close(
        torch.from_numpy(two["keypoints_px"]),
        torch.from_numpy(one["keypoints_px"]),
        rtol=1e-5,
        atol=1e-3,
    )
