"""Training order and augmentation that repeat exactly and resume mid-epoch.

A seeded run repeats, and a run killed mid-epoch and resumed from ``last.ckpt`` continues as
if never stopped, because every random choice of the input pipeline is a function of
``(seed, epoch, image)`` alone, never of process, worker or how far a generator had run:

* :class:`ResumableDistributedSampler`: the epoch's order is a permutation drawn from
  ``seed + epoch`` (as ``DistributedSampler``), sharded over the processes; it yields
  ``(index, augmentation seed)`` pairs and can start part-way into its shard.
* :class:`SeededAugmentation`: a dataset wrapper that seeds the albumentations pipeline with
  the pair's seed before each sample, so an image's augmentation in an epoch is the same with
  0 or 8 workers, on 1 or 4 processes, in a resumed run or not.
* :class:`ResumableDataLoader`: Lightning saves its ``state_dict`` (seed, epoch, batches
  done in the epoch) in every checkpoint and loads it on ``--ckpt_path``, so the resumed
  epoch skips exactly the batches already trained on (and Lightning does not warn that a
  mid-epoch resume is unreliable).

Why not torchdata's ``StatefulDataLoader`` (the obvious library choice): swapped in for
:class:`ResumableDataLoader` over the same sampler (torchdata 0.11.0, 2026-12-04), it passed
the exact-resume test (``tests/test_resume.py``) with 0 and with 1 loader worker, so
Lightning checkpoints it correctly here. It is not used because it would resume silently
where this loader refuses: its state counts the batches yielded, so a resume with another
``data.batch_size`` or number of processes skips a different set of samples, which
:meth:`ResumableDataLoader.load_state_dict` names as an error; and it would add a dependency
for the ~40 lines of state kept here. (The same experiment found the evaluation loaders'
workers shifting training's randomness on resume, fixed in the data module.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The albumentations seed of sample ``index`` in ``epoch``: a 32-bit hash of the three."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class ResumableDistributedSampler(DistributedSampler):
    """Shuffled training order, sharded over ``num_replicas`` processes, resumable.

    Yields ``(index, augmentation_seed(seed, epoch, index))``. Lightning calls
    :meth:`set_epoch` at every epoch start and, being a ``DistributedSampler``, leaves it in
    place under DDP (each process gets ``ceil(N / num_replicas)`` samples; the last shard is
    padded with repeats, as Lightning's own training sampler does).

    Args:
        dataset: the training set.
        num_replicas, rank: the processes and this one's rank (1 and 0 without DDP).
        seed: the order's and augmentation's seed.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start = 0  # samples of the current epoch's shard to skip (set when resuming)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())  # this process's shard of the epoch's permutation
        start, self.start = self.start, 0
        for index in indices[start:]:
            yield index, augmentation_seed(self.seed, self.epoch, index)


class SeededAugmentation(Dataset):
    """Wraps a ``PoseDataset``: ``wrapper[(i, seed)]`` seeds its augmentation with ``seed``,
    then returns ``dataset[i]``; ``wrapper[i]`` is ``dataset[i]`` with the augmentation's own
    generator (a sampler of plain indices)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int] | int) -> Any:
        if isinstance(item, int):  # a plain sampler (Lightning's overfit_batches swaps one in)
            return self.dataset[item]
        i, seed = item
        augmentation = getattr(self.dataset, "augmentation", None)
        if augmentation is not None:
            augmentation.set_random_seed(seed)
        return self.dataset[i]


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableDistributedSampler` with Lightning's stateful
    loader interface (``state_dict``/``load_state_dict``, saved in every checkpoint).

    Args:
        dataset: a :class:`SeededAugmentation`.
        batch_size, num_workers, drop_last, persistent_workers, worker_init_fn: as
            ``DataLoader``.
        sampler: the :class:`ResumableDistributedSampler` of ``dataset``.
        batches_done: returns the batches of the current epoch already trained on when a
            checkpoint is saved (the datamodule reads Lightning's batch progress: the loader
            itself runs ahead of training by its prefetched batches).
        seed: seeds the loader's own generator (the workers' base seed), so that creating
            workers draws nothing from torch's global generator, which the model's dropout
            and sampling use.
        shuffle, batch_sampler: as ``DataLoader``; there so that Lightning can rebuild the
            loader with another sampler (``overfit_batches``), which it does through the
            ``__init__`` arguments.
    """

    def __init__(
        self,
        dataset: SeededAugmentation,
        batch_size: int,
        sampler: ResumableDistributedSampler,
        batches_done: Callable[[], int],
        num_workers: int = 0,
        drop_last: bool = False,
        persistent_workers: bool = False,
        worker_init_fn: Callable[[int], None] | None = None,
        seed: int = 0,
        shuffle: bool | None = None,
        batch_sampler: Any = None,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            batch_sampler=batch_sampler,
            num_workers=num_workers,
            drop_last=drop_last,
            persistent_workers=persistent_workers,
            worker_init_fn=worker_init_fn,
            generator=torch.Generator().manual_seed(seed),
        )
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        """Empty where Lightning swapped in a plain sampler (``overfit_batches``)."""
        sampler = self.sampler
        if not isinstance(sampler, ResumableDistributedSampler):
            return {}
        return {
            "seed": sampler.seed,
            "epoch": sampler.epoch,
            "batches_done": self.batches_done(),
            "batch_size": self.batch_size,
            "num_replicas": sampler.num_replicas,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the saved epoch after its ``batches_done`` batches (the next epoch when
        they were all of it).

        Raises:
            ValueError: the checkpoint was written with another number of processes or batch
                size (its shards and batches would not line up with this run's).
        """
        sampler = self.sampler
        if not state or not isinstance(sampler, ResumableDistributedSampler):
            return
        for key, now in (("num_replicas", sampler.num_replicas), ("batch_size", self.batch_size)):
            if state[key] != now:
                where = (
                    "trainer.devices x trainer.num_nodes"
                    if key == "num_replicas"
                    else ("data.batch_size")
                )
                raise ValueError(
                    f"the checkpoint's training order has {key}={state[key]}, this run "
                    f"{now}: resume with the same {where}"
                )
        sampler.seed, sampler.epoch, sampler.start = state["seed"], state["epoch"], 0
        if state["batches_done"] >= len(self):
            sampler.epoch += 1
        else:
            sampler.start = state["batches_done"] * state["batch_size"]
