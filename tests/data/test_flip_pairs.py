"""Flip pairs of a user's skeleton through the COCO reader and the CLI: a 5-keypoint animal
named ``*_L``/``*_R`` gets its pairs, trains with flips, logs and records them (``config.yaml``,
``hparams.yaml``) and pools them in ``val_metrics.md``; names that look lateral but pair with
nothing stop training with flips until the config states ``flip_pairs`` (``[]`` included)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from lightning_pose.cli import main
from lightning_pose.data import COCOKeypoints, DatasetError, PoseDataModule
from tests.conftest import write_image

REPO = Path(__file__).resolve().parents[2]
ANIMAL = ("nose", "ear_L", "ear_R", "paw_L", "paw_R")
FILE = "critters/annotations.json"


def write_critters(root: Path, names: tuple[str, ...] = ANIMAL, n: int = 6) -> Path:
    """A COCO keypoint file of ``n`` generated 64x48 images, one animal each (all joints
    labelled and visible, inside a 40x30 box), category id 5; returns the data root."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n):
        write_image(root / "critters" / "images" / f"{i:03d}.png", 64, 48, seed=i)
        xy = np.column_stack([rng.uniform(12, 52, len(names)), rng.uniform(9, 39, len(names))])
        keypoints = np.column_stack([xy, np.full(len(names), 2)]).ravel().round(2).tolist()
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "width": 64, "height": 48})
        annotations.append(
            {"id": i + 1, "image_id": i + 1, "category_id": 5, "iscrowd": 0, "area": 1200.0,
             "bbox": [12, 9, 40, 30], "num_keypoints": len(names), "keypoints": keypoints}
        )  # fmt: skip
    sticks = [[1, 2], [1, 3], [2, 4], [3, 5]]
    category = {"id": 5, "name": "critter", "keypoints": list(names), "skeleton": sticks}
    content = {"images": images, "annotations": annotations, "categories": [category]}
    (root / FILE).write_text(json.dumps(content))
    return root


def critter_args(root: Path) -> list[str]:
    return [
        "-c", str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.root={root}",
        f"--data.dataset.init_args.train_json={FILE}",
        f"--data.dataset.init_args.val_json={FILE}",
        "--data.dataset.init_args.image_dir=critters/images",
        "--data.dataset.init_args.oks_sigmas=[0.05, 0.05, 0.05, 0.08, 0.08]",
        "--data.dataset.init_args.torso=[]",
        "--data.input_size=64", "--data.batch_size=2", "--data.num_workers=0",
        "--trainer.accelerator=cpu", "--trainer.devices=1",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]  # fmt: skip


def test_animal_pairs_are_found_logged_recorded_and_pooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    root = write_critters(tmp_path / "data")
    with caplog.at_level(logging.INFO):
        cli = main(
            ["fit", *critter_args(root), "--trainer.max_epochs=1",
             "--trainer.limit_train_batches=1", "--trainer.num_sanity_val_steps=0",
             f"--trainer.default_root_dir={tmp_path}"]
        )  # fmt: skip
    skeleton = cli.datamodule.skeleton
    assert skeleton.flip_pairs == ((1, 2), (3, 4))  # ear_L/ear_R, paw_L/paw_R
    assert cli.model.flip_permutation == [0, 2, 1, 4, 3]  # what augmentation and flip test use
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("flip pairs")]
    assert lines == [
        "flip pairs of skeleton 'critter' (from the joint names): ear_L <-> ear_R, paw_L <-> paw_R"
    ]
    run = Path(cli.trainer.log_dir)
    pairs = [["ear_L", "ear_R"], ["paw_L", "paw_R"]]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["dataset"]["init_args"]["flip_pairs"] == pairs
    assert yaml.safe_load((run / "hparams.yaml").read_text())["flip_pairs"] == pairs
    table = (run / "val_metrics.md").read_text()
    rows = [line.split(" |")[0][2:] for line in table.splitlines() if line.startswith("| ")]
    # joint groups pool each pair; limbs pool nose-ear with its mirror, ear-paw likewise
    assert rows[: rows.index("**mean**")] == ["joint group", "nose", "ear", "paw"]
    assert set(cli.model.skeleton.limb_groups()) == {"nose_ear", "ear_paw"}


def test_lateral_names_without_partners_refuse_flips_until_pairs_are_stated(
    tmp_path: Path,
) -> None:
    """``left_paw`` and ``paw_R`` look lateral in two conventions and pair with nothing."""
    names = ("nose", "left_ear", "right_ear", "left_paw", "paw_R")
    root = write_critters(tmp_path / "data", names)

    def data(**kwargs) -> PoseDataModule:
        reader = COCOKeypoints(
            FILE, FILE, "critters/images", oks_sigmas=[0.05] * 5, **kwargs.pop("reader", {})
        )
        return PoseDataModule(reader, root=str(root), num_workers=0, **kwargs)

    with pytest.raises(DatasetError) as refused:
        data().setup("fit")
    assert str(refused.value) == (
        "skeleton 'critter': the joints ['left_paw', 'paw_R'] look left or right by name but no "
        "flip partner was found for them (pairs found from the names: left_ear <-> right_ear), "
        "and training flips images horizontally (data.flip_prob=0.5), which would teach them "
        "the wrong side. Name the pairs in data.dataset.init_args.flip_pairs (e.g. "
        "data.dataset.init_args.flip_pairs=[[left_paw, <its mirror joint>]]; an empty list [] "
        "means no pairs) or set data.flip_prob=0"
    )
    stated = data(reader={"flip_pairs": [["left_ear", "right_ear"], ["left_paw", "paw_R"]]})
    stated.setup("fit")
    assert stated.skeleton.flip_pairs == ((1, 2), (3, 4))
    none = data(reader={"flip_pairs": []})  # an explicit "no pairs"
    none.setup("fit")
    assert none.skeleton.flip_pairs == ()
    unflipped = data(flip_prob=0.0)
    unflipped.setup("fit")
    assert unflipped.skeleton.flip_pairs == ((1, 2),)
