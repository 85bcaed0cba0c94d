"""Training order and augmentation: functions of (seed, epoch, image) only, so a seeded run
repeats with any number of workers and a loader resumed from its state continues exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.dataset import PoseDataset
from lightning_pose.data.readers import LSPet
from lightning_pose.data.sampling import (
    ResumableDataLoader,
    ResumableDistributedSampler,
    SeededAugmentation,
)
from tests.conftest import tiny_args

N = 10  # training samples: one real LSPet image repeated, so only augmentation differs


def make_loader(
    shared_data: Path, seed: int, num_workers: int = 0, done: int = 0
) -> ResumableDataLoader:
    dm = PoseDataModule(LSPet(), root=str(shared_data), input_size=32, batch_size=2, num_workers=0)
    dataset = PoseDataset(
        dm.load_annotations(), np.zeros(N, np.int64), 32, augmentation=dm.augmentation
    )
    return ResumableDataLoader(
        SeededAugmentation(dataset),
        batch_size=2,
        sampler=ResumableDistributedSampler(dataset, seed=seed),
        batches_done=lambda: done,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=True,
        seed=seed,
    )


def epoch(loader: ResumableDataLoader, e: int) -> list[torch.Tensor]:
    loader.sampler.set_epoch(e)
    return [b["keypoints_norm"] for b in loader]  # (2, K, 2) each


def test_same_seed_same_batches_with_any_worker_count(shared_data: Path) -> None:
    zero = epoch(make_loader(shared_data, seed=3), 0)
    two = epoch(make_loader(shared_data, seed=3, num_workers=2), 0)
    assert len(zero) == N // 2
    torch.testing.assert_close(torch.stack(zero), torch.stack(two), rtol=0, atol=0)
    other = epoch(make_loader(shared_data, seed=4), 0)
    assert not torch.allclose(torch.stack(zero), torch.stack(other), atol=1e-3)
    samples = torch.cat(zero)  # (N, K, 2): the same image, augmented N different ways
    assert all(
        not torch.allclose(samples[a], samples[b], atol=1e-3)
        for a in range(N)
        for b in range(a + 1, N)
    )
    # the next epoch augments differently
    later = epoch(make_loader(shared_data, seed=3), 1)
    assert not torch.allclose(torch.stack(zero), torch.stack(later), atol=1e-3)


@pytest.mark.parametrize("done", [2, 5])  # mid-epoch; the whole epoch (5 batches)
def test_a_loader_loaded_from_the_state_continues_the_run(shared_data: Path, done: int) -> None:
    uninterrupted = epoch(make_loader(shared_data, seed=7), 1) + epoch(
        make_loader(shared_data, seed=7), 2
    )
    saved = make_loader(shared_data, seed=7, done=done)
    saved.sampler.set_epoch(1)
    state = saved.state_dict()
    assert state == {"seed": 7, "epoch": 1, "batches_done": done, "batch_size": 2,
                     "num_replicas": 1}  # fmt: skip
    resumed = make_loader(shared_data, seed=0)  # another seed: the state's wins
    resumed.load_state_dict(state)
    rest = [b["keypoints_norm"] for b in resumed]  # the first iteration, as Lightning's
    # mid-epoch: the epoch's remaining batches; after a whole epoch: all of the next one
    assert len(rest) == (N // 2 - done if done < N // 2 else N // 2)
    torch.testing.assert_close(
        torch.stack(rest), torch.stack(uninterrupted[done : done + len(rest)]), rtol=0, atol=0
    )
    assert resumed.sampler.start == 0  # later epochs start from their beginning


def test_a_state_from_another_process_count_is_refused(shared_data: Path) -> None:
    state = make_loader(shared_data, seed=1).state_dict() | {"num_replicas": 2}
    with pytest.raises(ValueError, match=r"num_replicas=2.*trainer.devices x trainer.num_nodes"):
        make_loader(shared_data, seed=1).load_state_dict(state)


def test_shards_of_two_processes_cover_the_epoch_once() -> None:
    data = list(range(9))
    shards = [ResumableDistributedSampler(data, 2, rank, seed=5) for rank in (0, 1)]
    pairs = [list(s) for s in shards]
    assert len(pairs[0]) == len(pairs[1]) == 5  # padded to equal shards, as DDP needs
    assert set(i for p in pairs for i, _ in p) == set(data)
    # a sample's augmentation seed does not depend on the process it lands on
    one = dict(ResumableDistributedSampler(data, 1, 0, seed=5))
    assert all(one[i] == s for p in pairs for i, s in p)


def test_overfit_batches_swaps_in_a_plain_sampler_and_still_trains(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning's ``overfit_batches`` rebuilds the loader with a sequential sampler of plain
    indices; the seeded wrapper takes those too."""
    from lightning_pose.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["fit", "-c", str(Path(__file__).resolve().parents[2] / "conf" / "lspet.yaml")]
    args += [*tiny_args(tiny_root, max_samples=None), "--trainer.overfit_batches=2"]
    args += ["--trainer.max_steps=3"]
    cli = main(args)
    assert cli.trainer.global_step == 3
    assert np.isfinite(float(cli.trainer.callback_metrics["train/loss"]))
