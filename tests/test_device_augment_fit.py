"""``data.augment_on: device`` through the real Trainer on the CPU: under two gloo processes each
rank trains on its own shard, each training image once per epoch, with the augmentation a
one-process run gives the same image; and a fit killed mid-epoch and resumed ends as an
uninterrupted one (the same per-step losses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import default_collate

from lightning_pose.cli import main
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.readers import LSPet
from lightning_pose.data.sampling import SeededAugmentation, augmentation_seed
from tests.conftest import write_lspet
from tests.gloo import requires_gloo
from tests.test_ddp import run_cli
from tests.test_faults import probe
from tests.test_resume import STEPS, fit_args, kill_after_first_checkpoint, train_losses

REPO = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 16  # data.max_samples: 2 ranks x 2 batches of 4 an epoch


class RecordTrainingSamples(pl.Callback):
    """Writes ``samples_rank<r>.json``: the training order's seed and, per training step, each
    sample's position in the split, its augmented keypoints and the sum of its augmented image
    (after the batch transfer hook)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir, self.steps = Path(out_dir), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        positions = {
            int(index): i for i, index in enumerate(trainer.datamodule.splits["train"].indices)
        }
        self.steps.append(
            {
                "seed": trainer.train_dataloader.sampler.seed,
                "epoch": trainer.current_epoch,
                "position": [positions[int(i)] for i in batch["index"]],
                "keypoints_norm": batch["keypoints_norm"].tolist(),
                "image_sum": batch["image"].sum(dim=(1, 2, 3)).tolist(),
                "image_shape": list(batch["image"].shape),
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"samples_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.steps))


@requires_gloo
def test_two_processes_each_train_their_shard_each_image_once_an_epoch(tmp_path: Path) -> None:
    """Two epochs under two gloo processes: the ranks' shards are disjoint and cover the
    training images, and every sample a rank trained on is the one the (seed, epoch, image)
    function gives (rebuilt here in one process from the data module)."""
    root = tmp_path / "data"
    write_lspet(root / "lspet", 40)
    args = [
        "fit", "-c", str(REPO / "conf" / "lspet.yaml"), f"--data.root={root}",
        "--data.augment_on=device", "--data.input_size=32", "--data.batch_size=4",
        f"--data.max_samples={TRAIN_IMAGES}", "--data.num_workers=0",
        "--model.trunk=lightning_pose.models.ResNetTrunk", "--trainer.accelerator=cpu",
        "--trainer.devices=2", "--trainer.strategy=ddp", "--trainer.max_epochs=2",
        "--trainer.limit_val_batches=0",
        probe(f"{__name__}.RecordTrainingSamples", out_dir=str(tmp_path)),
    ]  # fmt: skip
    run_cli(args, tmp_path)
    ranks = [json.loads((tmp_path / f"samples_rank{r}.json").read_text()) for r in range(2)]
    for epoch in (0, 1):
        shards = [
            [p for step in rank if step["epoch"] == epoch for p in step["position"]]
            for rank in ranks
        ]
        assert [len(s) for s in shards] == [TRAIN_IMAGES // 2] * 2  # two steps of 4 each
        assert sorted(shards[0] + shards[1]) == list(range(TRAIN_IMAGES))
    (seed,) = {step["seed"] for rank in ranks for step in rank}
    dm = PoseDataModule(
        LSPet(), root=str(root), input_size=32, batch_size=4, num_workers=0,
        max_samples=TRAIN_IMAGES, augment_on="device",
    )  # fmt: skip
    dm.setup("fit")
    seeded = SeededAugmentation(dm.splits["train"])
    for rank in ranks:
        for step in rank:
            assert step["image_shape"] == [4, 3, 32, 32]
            samples = [
                seeded[(p, augmentation_seed(seed, step["epoch"], p))] for p in step["position"]
            ]
            expected = dm.on_after_batch_transfer(default_collate(samples), 0)
            torch.testing.assert_close(
                torch.tensor(step["keypoints_norm"]), expected["keypoints_norm"],
                atol=1e-6, rtol=0,
            )  # fmt: skip
            torch.testing.assert_close(
                torch.tensor(step["image_sum"]), expected["image"].sum(dim=(1, 2, 3)),
                atol=1e-3, rtol=1e-5,
            )  # fmt: skip
    # augmented: an image's two epochs differ
    first = {p: k for step in ranks[0] + ranks[1] if step["epoch"] == 0
             for p, k in zip(step["position"], step["keypoints_norm"], strict=True)}  # fmt: skip
    later = {p: k for step in ranks[0] + ranks[1] if step["epoch"] == 1
             for p, k in zip(step["position"], step["keypoints_norm"], strict=True)}  # fmt: skip
    assert all(first[p] != later[p] for p in range(TRAIN_IMAGES))


def test_killed_mid_epoch_then_resumed_ends_as_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tests/test_resume.py``'s fit (27 training images, batch 4, 12 steps, one loader
    worker) with ``data.augment_on=device``."""
    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    args = [*fit_args(root), "--data.augment_on=device"]
    (tmp_path / "whole").mkdir()
    monkeypatch.chdir(tmp_path / "whole")
    main(args)
    reference = tmp_path / "whole" / "runs" / "lspet" / "version_0"
    (tmp_path / "killed").mkdir()
    killed_at = kill_after_first_checkpoint(args, tmp_path / "killed")
    assert 0 < killed_at < STEPS // 2  # mid-epoch: the first epoch has 6 steps
    monkeypatch.chdir(tmp_path / "killed")
    cli = main([*args, "--ckpt_path", "last"])
    assert cli.trainer.global_step == STEPS
    run = tmp_path / "killed" / "runs" / "lspet" / "version_0"
    expected, resumed = train_losses(reference), train_losses(run)
    assert sorted(resumed) == sorted(expected) and len(expected) == STEPS
    for step in range(killed_at, STEPS):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5), step
