"""LSPet converted to COCO keypoint JSON and read back through the COCO reader gives the LSPet
reader's samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.cli import main as cli_main
from lightning_pose.data import COCOKeypoints, PoseDataset
from lightning_pose.data.convert import main
from lightning_pose.data.readers import read_lspet
from lightning_pose.data.skeleton import LSP_SKELETON

N, S = 6, 64
REPO = Path(__file__).resolve().parents[2]


def test_lspet_round_trip_gives_the_same_samples(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lspet_coco.json"
    main(["lspet", str(shared_data), str(out), "--max-samples", str(N)])
    content = json.loads(out.read_text())
    assert len(content["images"]) == len(content["annotations"]) == N
    assert content["categories"][0]["keypoints"] == list(LSP_SKELETON.joints)
    assert len(content["categories"][0]["skeleton"]) == 9  # LSP's 10 sticks less the torso
    reader = COCOKeypoints(
        train_json=str(out),
        val_json=str(out),
        image_dir=str(shared_data / "lspet" / "images"),
        bbox_scale=1.0,
        torso=["left_shoulder", "right_hip"],
        head=["neck", "head_top"],
    )
    coco = reader.read(tmp_path)
    lspet = read_lspet(shared_data / "lspet")
    assert coco.skeleton.name == "person"
    # COCO's constants for its joints (right_ankle 0.089, ...), CrowdPose's for neck, head top
    assert coco.skeleton.oks_sigmas == (
        0.089, 0.087, 0.107, 0.107, 0.087, 0.089,
        0.062, 0.072, 0.079, 0.079, 0.072, 0.062, 0.079, 0.079,
    )  # fmt: skip
    assert coco.skeleton.flip_permutation() == LSP_SKELETON.flip_permutation()
    assert (coco.skeleton.torso, coco.skeleton.head) == (LSP_SKELETON.torso, LSP_SKELETON.head)
    np.testing.assert_array_equal(coco.labelled[:N], lspet.labelled[:N])
    np.testing.assert_array_equal(coco.visible[:N], lspet.visible[:N])
    assert coco.image_paths[:N] == lspet.image_paths[:N]
    for i in range(N):
        ours = PoseDataset(lspet, np.array([i]), S)[0]
        back = PoseDataset(coco, np.array([i]), S)[0]
        lab = ours["labelled"]
        torch.testing.assert_close(back["box"], ours["box"], rtol=0, atol=1e-4)
        torch.testing.assert_close(back["image"], ours["image"], rtol=0, atol=1.5 / 255)
        for key in ("keypoints_px", "keypoints_norm"):  # unlabelled: placeholders vs 0
            torch.testing.assert_close(back[key][lab], ours[key][lab], rtol=0, atol=1e-5)
        for key in ("torso_diameter_px", "head_size_px"):
            torch.testing.assert_close(back[key], ours[key], rtol=1e-6, atol=1e-4)


def test_converted_lspet_trains_and_validates_with_no_extra_option(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converter's file through ``conf/coco_mini.yaml`` with only its own paths named:
    no ``oks_sigmas`` (the file carries them), OKS AP and bbox-PCK logged."""
    out = tmp_path / "lspet_coco.json"
    main(["lspet", str(shared_data), str(out), "--max-samples", "8"])
    monkeypatch.chdir(tmp_path)
    common = [
        "-c", str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.dataset.init_args.train_json={out}",
        f"--data.dataset.init_args.val_json={out}",
        f"--data.dataset.init_args.image_dir={shared_data / 'lspet' / 'images'}",
        "--data.input_size=64", "--data.batch_size=4", "--data.num_workers=0",
        "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.logger=false",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]  # fmt: skip
    fit = cli_main(["fit", *common, "--trainer.fast_dev_run=1"])
    assert fit.trainer.global_step == 1
    validate = cli_main(["validate", *common, "--trainer.fast_dev_run=2"])
    metrics = {k: float(v) for k, v in validate.trainer.callback_metrics.items()}
    for key in ("val/oks_ap", "val/oks_ar", "val/pck_bbox@0.2", "val/pdj@0.2"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, f"{key}: {sorted(metrics)}"
