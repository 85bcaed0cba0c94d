"""RNGStateCheckpoint: the generator state in every checkpoint, restored once, at the first
training step of a resumed fit; every PoseEstimator attaches it without configuration."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytorch_lightning as pl
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader

from lightning_pose.callbacks.rng_state import RNGStateCheckpoint
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import DeepPose
from tests.models.test_deeppose import ListDataset, TinyTrunk, make_batch

CPU_MODULE = SimpleNamespace(device=torch.device("cpu"))


def test_a_resumed_fit_draws_what_the_saved_run_drew_next() -> None:
    callback = RNGStateCheckpoint()
    torch.manual_seed(7)
    checkpoint: dict = {}
    callback.on_save_checkpoint(None, CPU_MODULE, checkpoint)
    expected = torch.rand(5)  # the saved run's next draws
    torch.manual_seed(123)  # the resumed process: another state (set-up, sanity check)
    callback.on_load_checkpoint(None, CPU_MODULE, checkpoint)
    assert not torch.equal(torch.rand(5), expected)  # not restored before the first step
    callback.on_train_batch_start(None, CPU_MODULE, None, 0)
    assert_close(torch.rand(5), expected, rtol=0, atol=0)
    after = torch.get_rng_state()
    callback.on_train_batch_start(None, CPU_MODULE, None, 1)  # once only
    assert torch.equal(torch.get_rng_state(), after)


def test_a_checkpoint_without_a_state_restores_nothing() -> None:
    callback = RNGStateCheckpoint()
    callback.on_load_checkpoint(None, CPU_MODULE, {})
    before = torch.get_rng_state()
    callback.on_train_batch_start(None, CPU_MODULE, None, 0)
    assert torch.equal(torch.get_rng_state(), before)


def test_every_pose_estimator_writes_it_into_its_fit_checkpoints(tmp_path: Path) -> None:
    model = DeepPose(TinyTrunk(), LSP_SKELETON)
    assert [type(c) for c in model.configure_callbacks()] == [RNGStateCheckpoint]
    samples = [{k: v[i] for k, v in make_batch(seed=1).items()} for i in range(2)]
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(ListDataset(samples), batch_size=2))
    assert sum(isinstance(c, RNGStateCheckpoint) for c in trainer.callbacks) == 1
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    checkpoint = torch.load(tmp_path / "model.ckpt", map_location="cpu", weights_only=True)
    assert torch.equal(checkpoint["rng"]["torch"], torch.get_rng_state())
