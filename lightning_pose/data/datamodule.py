"""One LightningDataModule for every model variant; the dataset is chosen by config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_pose.data.dataset import ImageFolderDataset, PoseDataset, unreadable_images
from lightning_pose.data.readers import READERS, DatasetError, PoseAnnotations, list_images
from lightning_pose.data.sampling import (
    ResumableDataLoader,
    ResumableDistributedSampler,
    SeededAugmentation,
)
from lightning_pose.data.transforms import build_augmentation
from lightning_pose.data.video import VideoFrames, probe_video
from lightning_pose.skeleton import SKELETONS, Skeleton

DATA_ROOT_ENV = "LIGHTNING_POSE_DATA_ROOT"
DEFAULT_DATA_ROOT = "../shared/data"


def resolve_data_root(root: str | None) -> Path:
    """``root`` if given, else ``$LIGHTNING_POSE_DATA_ROOT``, else ``../shared/data``.

    Raises:
        DatasetError: the resolved folder does not exist (the message says where it looked).
    """
    source = "data.root"
    if root is None:
        root, source = os.environ.get(DATA_ROOT_ENV), DATA_ROOT_ENV
    if root is None:
        root, source = DEFAULT_DATA_ROOT, "the default data root"
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(
            f"data root {path.resolve()} (from {source}) does not exist; set `data.root` in the "
            f"config or the {DATA_ROOT_ENV} environment variable to the folder holding "
            "lspet/, lsp/ and flic/"
        )
    return path


def split_indices(annotations: PoseAnnotations, val_every: int) -> dict[str, np.ndarray]:
    """Deterministic train/val/test split.

    * LSP and FLIC: the official train/test split; every ``val_every``-th training example
      (positions ``val_every - 1, 2 * val_every - 1, ...`` of the training examples in file
      order) is held out for validation and model selection.
    * LSPet has no official split: every ``val_every``-th image (im00010, im00020, ...) is the
      validation set and also serves as ``test``; the other images train.
    """
    if val_every < 2:
        raise ValueError(f"data.val_every must be >= 2, got {val_every}")
    n = len(annotations)
    if annotations.is_train is None:
        train_pool = np.arange(n)
        test = None
    else:
        train_pool = np.flatnonzero(annotations.is_train)
        test = np.flatnonzero(annotations.is_test)
    held_out = (np.arange(len(train_pool)) % val_every) == val_every - 1
    val = train_pool[held_out]
    return {"train": train_pool[~held_out], "val": val, "test": val if test is None else test}


class PoseDataModule(pl.LightningDataModule):
    """Pose data for DeepPose, the cascade, the heatmap and the multi-task models.

    Args:
        dataset: ``"lspet"``, ``"lsp"`` or ``"flic"`` (official layouts, see
            ``../shared/data/README.md``).
        root: folder holding ``lspet/``, ``lsp/``, ``flic/``; None = ``$LIGHTNING_POSE_DATA_ROOT``
            or ``../shared/data``.
        input_size: side of the square crop the network sees, pixels (DeepPose: 220).
        batch_size: samples per batch and device.
        num_workers: DataLoader worker processes.
        val_every: every ``val_every``-th training example is held out (see
            :func:`split_indices`).
        max_samples: keep only the first N examples of each split (smoke tests); None = all.
        torso_box_scale: FLIC box side as a multiple of the torso-box height.
        scale, rotation_deg, translate, flip_prob, color_jitter: training augmentation (see
            :func:`lightning_pose.data.transforms.build_augmentation`).
        predict_dir: folder of unannotated images for ``predict``; None = the test split.
            ``predict`` decodes every image it will read when it sets up and stops, listing
            every missing, truncated or undecodable file, before the model runs: no image is
            skipped, so ``predictions.npz`` always covers the whole folder.
        highres_factor: f > 1 adds ``image_hr`` at f x ``input_size`` to each annotated sample
            (the DeepPose cascade re-crops it around each joint; see ``PoseDataset``).
        cache_images: decode the training and evaluation images once, when the split is built,
            and keep their box crops in memory (``PoseDataset``'s ``cache_images``): a sample
            then costs its augmentation only. Measured in ``bench/throughput.py``.
        predict_video: a video file for ``predict`` (instead of ``predict_dir``): its frames,
            decoded in order one at a time (:mod:`lightning_pose.data.video`; at most one
            loader worker), the whole frame as the box. A video that cannot be opened or has
            no frames stops predict when it sets up; a frame that fails to decode, or changes
            size, stops it there, naming the frame.

    The box the model sees never comes from the ground-truth joints: the whole image (padded to
    a square) for LSP/LSPet, a square around the official torso box for FLIC.
    """

    def __init__(
        self,
        dataset: Literal["lspet", "lsp", "flic"] = "lspet",
        root: str | None = None,
        input_size: int = 220,
        batch_size: int = 32,
        num_workers: int = 2,
        val_every: int = 10,
        max_samples: int | None = None,
        torso_box_scale: float = 3.0,
        scale: float = 0.25,
        rotation_deg: float = 30.0,
        translate: float = 0.1,
        flip_prob: float = 0.5,
        color_jitter: float = 0.2,
        predict_dir: str | None = None,
        highres_factor: int = 1,
        cache_images: bool = False,
        predict_video: str | None = None,
    ) -> None:
        super().__init__()
        if dataset not in READERS:
            raise DatasetError(f"data.dataset: unknown dataset {dataset!r}; one of {list(READERS)}")
        self.save_hyperparameters()
        self.dataset = dataset
        self.root = root
        self.input_size = input_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_every = val_every
        self.max_samples = max_samples
        self.torso_box_scale = torso_box_scale
        self.predict_dir = predict_dir
        self.highres_factor = highres_factor
        self.cache_images = cache_images
        self.predict_video = predict_video
        self.video_info = None  # VideoInfo of predict_video, set when predict sets up
        if predict_video is not None and predict_dir is not None:
            raise ValueError("data.predict_video and data.predict_dir: give one")
        self.augmentation = build_augmentation(
            scale, rotation_deg, translate, flip_prob, color_jitter
        )
        self.annotations: PoseAnnotations | None = None
        self.splits: dict[str, PoseDataset] = {}
        self.predict_paths: list[Path] | None = None

    @property
    def skeleton(self) -> Skeleton:
        return SKELETONS[self.dataset]

    @property
    def joint_names(self) -> list[str]:
        """Joint names in annotation order (linked to ``model.joint_names``)."""
        return list(self.skeleton.joints)

    @property
    def box_mode(self) -> str:
        return "torso" if self.dataset == "flic" else "whole_image"

    def load_annotations(self) -> PoseAnnotations:
        if self.annotations is None:
            root = resolve_data_root(self.root)
            self.annotations = READERS[self.dataset](root / self.dataset)
        return self.annotations

    def make_split(self, split: str, augment: bool) -> PoseDataset:
        annotations = self.load_annotations()
        indices = split_indices(annotations, self.val_every)[split]
        if self.max_samples is not None:
            indices = indices[: self.max_samples]
        image_dir = annotations.image_paths[0].parent if len(annotations) else None
        if image_dir is not None and not image_dir.is_dir():
            raise DatasetError(
                f"{self.dataset} images not found: looked for the folder {image_dir.resolve()}"
            )
        return PoseDataset(
            annotations,
            indices,
            self.input_size,
            box_mode=self.box_mode,
            augmentation=self.augmentation if augment else None,
            torso_box_scale=self.torso_box_scale,
            highres_factor=self.highres_factor,
            cache_images=self.cache_images,
        )

    def _describe_split(self, split: str, count: int) -> str:
        """E.g. "the lspet validation split (900 images; data.val_every=10, data.max_samples=
        None)", for error messages."""
        word = {"train": "training", "val": "validation", "test": "test"}[split]
        return (
            f"the {self.dataset} {word} split ({count} images; data.val_every={self.val_every}, "
            f"data.max_samples={self.max_samples})"
        )

    def check_split(self, split: str, dataset: PoseDataset, evaluated: bool) -> None:
        """Fail before any work when a split cannot serve its purpose.

        Every split needs an image; an evaluated one (validation, test) also needs an image PDJ
        can score: both torso joints labelled and apart, the torso diameter being PDJ's
        normaliser (DeepPose §5). Without one, ``val/pdj@...`` is never logged and a
        checkpoint monitoring it fails only after the first stretch of training.

        Raises:
            DatasetError: naming the split, its size and the settings that made it.
        """
        if len(dataset) == 0:
            raise DatasetError(
                f"{self._describe_split(split, 0)} has no images; expected at least one "
                f"(the {self.dataset} annotations have {len(dataset.annotations)} examples)"
            )
        if not evaluated:
            return
        ann, (a, b) = dataset.annotations, self.skeleton.torso
        labelled = ann.labelled[dataset.indices]  # (N, K)
        keypoints = ann.keypoints_px[dataset.indices]  # (N, K, 2) pixels
        apart = np.linalg.norm(keypoints[:, a] - keypoints[:, b], axis=-1) > 0  # (N,)
        if not (labelled[:, a] & labelled[:, b] & apart).any():
            joints = f"{self.skeleton.joints[a]}, {self.skeleton.joints[b]}"
            raise DatasetError(
                f"{self._describe_split(split, len(dataset))} has no image PDJ can score: "
                f"none has both torso joints ({joints}) labelled and apart, and the torso "
                "diameter normalises PDJ (DeepPose §5). Expected at least one such image"
            )

    def check_predict_images(self, paths: list[Path], where: str) -> None:
        """Decode every image ``predict`` will read, before the model runs.

        Raises:
            DatasetError: listing every image that is missing, truncated or undecodable (so
                one bad file never costs a finished predict run); nothing is predicted.
        """
        problems = unreadable_images(paths)
        if problems:
            listing = "\n  ".join(problems)
            raise DatasetError(
                f"{where}: {len(problems)} of {len(paths)} images cannot be read; fix or remove "
                f"them (nothing was predicted):\n  {listing}"
            )

    def setup(self, stage: str) -> None:
        """Build the stage's splits and check them (see :meth:`check_split` and
        :meth:`check_predict_images`).

        Raises:
            DatasetError: a split without images, an evaluated split without an image PDJ can
                score, or predict images that cannot be read.
        """
        validating = self.trainer is None or self.trainer.limit_val_batches != 0
        if stage == "fit":
            self.splits["train"] = self.make_split("train", augment=True)
            self.check_split("train", self.splits["train"], evaluated=False)
            self.splits["val"] = self.make_split("val", augment=False)
            if validating:
                self.check_split("val", self.splits["val"], evaluated=True)
        elif stage == "validate":
            self.splits["val"] = self.make_split("val", augment=False)
            self.check_split("val", self.splits["val"], evaluated=True)
        elif stage == "test":
            self.splits["test"] = self.make_split("test", augment=False)
            self.check_split("test", self.splits["test"], evaluated=True)
        elif stage == "predict":
            if self.predict_video is not None:
                self.video_info = probe_video(Path(self.predict_video))
                return
            if self.predict_dir is not None:
                self.predict_paths = list_images(Path(self.predict_dir))
                paths, where = self.predict_paths, f"data.predict_dir={self.predict_dir}"
            else:
                split = self.splits["predict"] = self.make_split("test", augment=False)
                self.check_split("test", split, evaluated=False)
                paths = [split.annotations.image_paths[i] for i in split.indices]
                where = self._describe_split("test", len(split))
            self.check_predict_images(paths, where)

    def _eval_sampler(self, dataset: Dataset) -> Sampler | None:
        """Under several processes, each evaluation image goes to exactly one process.

        Lightning's default for validation and test is a ``DistributedSampler``, which pads
        the shards by repeating images (900 images on 8 processes would count 4 twice). An
        ``UnrepeatedDistributedSampler`` gives shards that differ by at most one image
        instead, so the summed metric states count each image once. None on one process.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def _loader(self, dataset, shuffle: bool, sampler: Sampler | None = None) -> DataLoader:
        """An evaluation or predict loader: fixed order, no augmentation."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled, augmented, sharded over the processes, and resumable mid-epoch: the order
        and every augmentation are functions of (seed, epoch, image) only (see
        :mod:`lightning_pose.data.sampling`). The seed is drawn from torch's generator, which
        ``seed_everything`` sets, and broadcast from rank zero."""
        dataset = self.splits["train"]
        trainer = self.trainer
        seed = int(torch.randint(2**31, ()).item())
        if trainer is not None:
            seed = int(trainer.strategy.broadcast(seed))
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)

        def batches_done() -> int:  # of the current epoch, when a checkpoint is saved
            return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer else 0

        return ResumableDataLoader(
            SeededAugmentation(dataset),
            batch_size=self.batch_size,
            sampler=ResumableDistributedSampler(dataset, world, rank, seed),
            batches_done=batches_done,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=len(dataset) > self.batch_size * world,
            seed=seed,
        )

    def val_dataloader(self) -> DataLoader:
        dataset = self.splits["val"]
        return self._loader(dataset, shuffle=False, sampler=self._eval_sampler(dataset))

    def test_dataloader(self) -> DataLoader:
        dataset = self.splits["test"]
        return self._loader(dataset, shuffle=False, sampler=self._eval_sampler(dataset))

    def predict_dataloader(self) -> DataLoader:
        if self.video_info is not None:
            frames = VideoFrames(self.video_info, self.input_size, self.highres_factor)
            workers = min(self.num_workers, 1)  # one reader: frames in order, each once
            return DataLoader(frames, batch_size=self.batch_size, num_workers=workers)
        if self.predict_paths is not None:
            return self._loader(
                ImageFolderDataset(self.predict_paths, self.input_size, self.highres_factor), False
            )
        return self._loader(self.splits["predict"], shuffle=False)

    def predict_image_paths(self) -> list[Path]:
        """Image paths that a predict sample's ``index`` points into."""
        if self.predict_paths is not None:
            return self.predict_paths
        return self.load_annotations().image_paths
