"""One LightningDataModule for every model variant; the dataset is a reader object chosen by
config (``data.dataset: {class_path: ..., init_args: ...}``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from lightning_pose.data.annotations import DatasetError, PoseAnnotations, PoseReader
from lightning_pose.data.dataset import ImageFolderDataset, PoseDataset, unreadable_images
from lightning_pose.data.detections import (
    PredictInstances,
    image_id_of,
    read_detections,
    read_video_detections,
)
from lightning_pose.data.device_augment import DeviceAugmentation, device_split
from lightning_pose.data.predict_source import PredictSource
from lightning_pose.data.readers import list_images
from lightning_pose.data.sampling import (
    ResumableDataLoader,
    ResumableDistributedSampler,
    SeededAugmentation,
)
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.data.transforms import build_augmentation
from lightning_pose.data.video import VideoFrames, probe_video

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "LIGHTNING_POSE_DATA_ROOT"
DEFAULT_DATA_ROOT = "../shared/data"


def _data_root(root: str | None) -> tuple[Path, str]:
    """The data root path (unchecked) and where it came from."""
    source = "data.root"
    if root is None:
        root, source = os.environ.get(DATA_ROOT_ENV), DATA_ROOT_ENV
    if root is None:
        root, source = DEFAULT_DATA_ROOT, "the default data root"
    return Path(root).expanduser(), source


def resolve_data_root(root: str | None) -> Path:
    """``root`` if given, else ``$LIGHTNING_POSE_DATA_ROOT``, else ``../shared/data``.

    Raises:
        DatasetError: the resolved folder does not exist or is a file (the message says
            where it looked).
    """
    path, source = _data_root(root)
    if path.exists() and not path.is_dir():
        raise DatasetError(
            f"data root {path.resolve()} (from {source}) is a file, expected a folder holding "
            "the datasets; set `data.root` in the config or the "
            f"{DATA_ROOT_ENV} environment variable to that folder"
        )
    if not path.is_dir():
        raise DatasetError(
            f"data root {path.resolve()} (from {source}) does not exist; set `data.root` in the "
            f"config or the {DATA_ROOT_ENV} environment variable to the folder holding "
            "the datasets (e.g. lspet/, coco/)"
        )
    return path


def split_indices(annotations: PoseAnnotations, val_every: int) -> dict[str, np.ndarray]:
    """Deterministic train/val/test split, from the reader's split flags.

    * A reader with a validation split (COCO JSON files named per split): train, val as given;
      test as given, else the validation set.
    * A reader with an official train/test split only (LSP, FLIC): every ``val_every``-th
      training example (positions ``val_every - 1, 2 * val_every - 1, ...`` of the training
      examples in file order) is held out for validation and model selection.
    * No split (LSPet): every ``val_every``-th image (im00010, im00020, ...) is the
      validation set and also serves as ``test``; the other images train.
    """
    if val_every < 2:
        raise ValueError(f"data.val_every must be >= 2, got {val_every}")
    n = len(annotations)
    if annotations.is_val is not None and annotations.is_train is not None:
        val = np.flatnonzero(annotations.is_val)
        test = val if annotations.is_test is None else np.flatnonzero(annotations.is_test)
        return {"train": np.flatnonzero(annotations.is_train), "val": val, "test": test}
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
        dataset: the reader (``lightning_pose.data.LSPet``, ``LSP``, ``FLIC``,
            ``COCOKeypoints``, ``MPIIKeypoints``, ...), which also chooses the box the model
            sees. Required: the datamodule knows no dataset by name.
        root: the data root the reader's paths are relative to; None =
            ``$LIGHTNING_POSE_DATA_ROOT`` or ``../shared/data``.
        input_size: side of the square crop the network sees, pixels (DeepPose: 220).
        batch_size: samples per batch and device.
        num_workers: DataLoader worker processes.
        val_every: every ``val_every``-th training example is held out (see
            :func:`split_indices`).
        max_samples: keep only the first N examples of each split (smoke tests); None = all.
        scale, rotation_deg, translate, flip_prob, color_jitter: training augmentation (see
            :func:`lightning_pose.data.transforms.build_augmentation`).
        predict: what ``predict`` reads, e.g. ``--data.predict.image_dir=photos/``: a folder
            of images or a video, whole or in detected person boxes
            (:class:`lightning_pose.data.PredictSource`, whose ``check`` refuses one that names
            no images); None = the test split.
        highres_factor: f > 1 adds ``image_hr`` at f x ``input_size`` to each sample (the
            DeepPose cascade re-crops it around each joint; see ``PoseDataset``). None (the
            default): what the model asks for, its ``image_hr_factor``
            (:meth:`match_model`, called when the Trainer sets the data up; 1 without a model).
        cache_images: decode the training and evaluation images once, when the split is built,
            and keep their box crops in memory (``PoseDataset``'s ``cache_images``): a sample
            then costs its augmentation only. Measured in ``bench/throughput.py``.
        augment_on: where training samples are augmented. ``cpu`` (the default): in the loader
            workers, with albumentations (:mod:`lightning_pose.data.transforms`). ``device``:
            each training image is decoded once into a uint8 crop cache and every batch is
            augmented on the model's device, in one batched call, with the same parameter
            distribution (:mod:`lightning_pose.data.device_augment`).
        device_crop_factor: with ``augment_on: device``, the cached crops' side as a multiple
            of ``input_size`` (at least ``highres_factor``): 2 keeps detail for zooms and
            rotations; LSPet's 8,100 training images at 2 x 160 px take 2.5 GB.

    The box the model sees never comes from the ground-truth joints: the reader's person box,
    or the whole image padded to a square.
    """

    def __init__(
        self,
        dataset: PoseReader,
        root: str | None = None,
        input_size: PositiveInt = 220,
        batch_size: PositiveInt = 32,
        num_workers: NonNegativeInt = 2,
        val_every: int = 10,
        max_samples: PositiveInt | None = None,
        scale: float = 0.25,
        rotation_deg: float = 30.0,
        translate: float = 0.1,
        flip_prob: float = 0.5,
        color_jitter: float = 0.2,
        predict: PredictSource | None = None,
        highres_factor: PositiveInt | None = None,
        cache_images: bool = False,
        augment_on: Literal["cpu", "device"] = "cpu",
        device_crop_factor: PositiveInt = 2,
    ) -> None:
        super().__init__()
        if not isinstance(dataset, PoseReader):
            raise DatasetError(
                f"data.dataset: expected a reader object (a PoseReader such as "
                f"lightning_pose.data.LSPet), got {dataset!r}"
            )
        # plain ints in the checkpoint's hyperparameters: jsonargparse's PositiveInt (which
        # makes `--data.batch_size=0` a parse error naming the key) is not a type that
        # torch.load(weights_only=True) reads back
        input_size, batch_size, num_workers = int(input_size), int(batch_size), int(num_workers)
        max_samples = None if max_samples is None else int(max_samples)
        device_crop_factor = int(device_crop_factor)
        if augment_on not in ("cpu", "device"):
            raise ValueError(f"data.augment_on must be 'cpu' or 'device', got {augment_on!r}")
        highres_factor = None if highres_factor is None else int(highres_factor)
        if predict is not None:
            predict.check()
        if highres_factor is not None and highres_factor < 1:
            raise ValueError(f"data.highres_factor must be >= 1 or unset, got {highres_factor}")
        self.save_hyperparameters()
        if not isinstance(self.hparams.get("dataset"), dict):  # not through the CLI
            self.hparams["dataset"] = dataset.config()  # plain types: weights_only checkpoints
        if isinstance(self.hparams.get("predict"), PredictSource):  # not through the CLI
            self.hparams["predict"] = dataclasses.asdict(predict)
        self.dataset = dataset
        self.root = root
        self.input_size = input_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_every = val_every
        self.max_samples = max_samples
        self.predict = predict
        self.highres_factor = highres_factor or 1  # until match_model
        self.cache_images = cache_images
        self.video_info = None  # VideoInfo of predict.video, set when predict sets up
        self.video_boxes: np.ndarray | None = None  # (frames, 4) from predict.boxes, NaN: none
        self.augmentation = build_augmentation(
            scale, rotation_deg, translate, flip_prob, color_jitter
        )
        self.augment_on, self.device_crop_factor = augment_on, device_crop_factor
        self.device_augmentation: DeviceAugmentation | None = None  # set by make_split
        self.annotations: PoseAnnotations | None = None
        self.splits: dict[str, PoseDataset] = {}
        self._checked_images: set[Path] = set()  # decoded once by check_images
        self.predict_paths: list[Path] | None = None
        self.predict_instances: PredictInstances | None = None

    @property
    def skeleton(self) -> Skeleton:
        """The reader's skeleton (linked to ``model.init_args.skeleton``)."""
        return self.dataset.skeleton(_data_root(self.root)[0])

    @property
    def joint_names(self) -> list[str]:
        """Joint names in annotation order: ``skeleton.joints`` (the model gets them with the
        skeleton, ``data.skeleton`` -> ``model.init_args.skeleton``; no link of its own)."""
        return list(self.skeleton.joints)

    def match_model(self, model: object) -> int:
        """Serve the views ``model`` reads: sets and returns :attr:`highres_factor`, the
        model's ``image_hr_factor`` (1 for a model without one) unless ``data.highres_factor``
        was given.

        Raises:
            ValueError: ``data.highres_factor`` given, but smaller than the model's.
        """
        needed = int(getattr(model, "image_hr_factor", 1))
        given = self.hparams["highres_factor"]  # as configured; None: follow the model
        if given is not None and given < needed:
            raise ValueError(
                f"data.highres_factor={given}, but {type(model).__name__} reads image_hr at "
                f"{needed}x the input size (model.image_hr_factor): leave data.highres_factor "
                f"unset or set it to {needed}"
            )
        self.highres_factor = needed if given is None else given
        return self.highres_factor

    def load_annotations(self) -> PoseAnnotations:
        if self.annotations is None:
            # a reader with absolute paths only needs no data root (PoseReader.needs_root)
            needs_root = self.dataset.needs_root()
            root = resolve_data_root(self.root) if needs_root else _data_root(self.root)[0]
            self.annotations = self.dataset.read(root)
        return self.annotations

    def split_indices(self, split: str) -> np.ndarray:
        """Positions of ``split``'s examples in the annotations (``max_samples`` applied)."""
        indices = split_indices(self.load_annotations(), self.val_every)[split]
        return indices if self.max_samples is None else indices[: self.max_samples]

    def make_split(self, split: str, augment: bool) -> PoseDataset:
        annotations = self.load_annotations()
        indices = self.split_indices(split)
        self._check_image_folder()
        if augment and self.augment_on == "device":
            dataset, self.device_augmentation = device_split(
                annotations, indices, self.input_size, self.highres_factor,
                self.device_crop_factor, self.hparams,
            )  # fmt: skip
            return dataset
        return PoseDataset(
            annotations,
            indices,
            self.input_size,
            augmentation=self.augmentation if augment else None,
            highres_factor=self.highres_factor,
            cache_images=self.cache_images,
        )

    def _describe_split(self, split: str, count: int) -> str:
        """E.g. "the lspet validation split (900 images; data.val_every=10, data.max_samples=
        None)", for error messages."""
        word = {"train": "training", "val": "validation", "test": "test"}[split]
        return (
            f"the {self.dataset.name} {word} split ({count} images; "
            f"data.val_every={self.val_every}, data.max_samples={self.max_samples})"
        )

    def check_split(self, split: str, dataset: PoseDataset, evaluated: bool) -> None:
        """Fail before any work when a split cannot serve its purpose.

        Every split needs an image; an evaluated one (validation, test) also needs an image its
        main metric can score. PDJ, where the skeleton has a torso: both torso joints labelled
        and apart, the torso diameter being PDJ's normaliser (DeepPose §5); without one,
        ``val/pdj@...`` is never logged and a checkpoint monitoring it fails only after the
        first stretch of training. Without a torso, bbox-PCK: a labelled joint on an instance
        with a person box.

        Raises:
            DatasetError: naming the split, its size and the settings that made it.
        """
        if len(dataset) == 0:
            raise DatasetError(
                f"{self._describe_split(split, 0)} has no images; expected at least one "
                f"(the {self.dataset.name} annotations have {len(dataset.annotations)} examples)"
            )
        if not evaluated:
            return
        ann, skeleton = dataset.annotations, dataset.annotations.skeleton
        labelled = ann.labelled[dataset.indices]  # (N, K)
        if skeleton.torso is None:
            sizes = np.zeros(len(dataset)) if ann.bbox_size_px is None else ann.bbox_size_px
            if not (labelled.any(axis=1) & (sizes[dataset.indices] > 0)).any():
                raise DatasetError(
                    f"{self._describe_split(split, len(dataset))} has no instance bbox-PCK can "
                    f"score: skeleton {skeleton.name!r} has no torso (no PDJ), and no instance "
                    "has a labelled joint and a person box. Expected at least one such instance"
                )
            return
        a, b = skeleton.torso
        keypoints = ann.keypoints_px[dataset.indices]  # (N, K, 2) pixels
        apart = np.linalg.norm(keypoints[:, a] - keypoints[:, b], axis=-1) > 0  # (N,)
        if not (labelled[:, a] & labelled[:, b] & apart).any():
            joints = f"{skeleton.joints[a]}, {skeleton.joints[b]}"
            raise DatasetError(
                f"{self._describe_split(split, len(dataset))} has no image PDJ can score: "
                f"none has both torso joints ({joints}) labelled and apart, and the torso "
                "diameter normalises PDJ (DeepPose §5). Expected at least one such image"
            )

    def check_images(self, paths: list[Path], where: str, consequence: str) -> None:
        """Decode every image a stage will read, before any work (each file once per data
        module: the cascade's later stages and a resumed split are not decoded again).

        Args:
            paths: the image files.
            where: what they are, for the message (a split, a folder).
            consequence: what was not done, for the message ("nothing was trained").

        Raises:
            DatasetError: listing every image that is missing, truncated or undecodable (so
                one bad file never costs a finished or half-finished run).
        """
        unique = list(dict.fromkeys(p for p in paths if p not in self._checked_images))
        problems = unreadable_images(unique)
        if problems:
            listing = "\n  ".join(problems)
            raise DatasetError(
                f"{where}: {len(problems)} of {len(unique)} images cannot be read; fix or "
                f"remove them ({consequence}):\n  {listing}"
            )
        self._checked_images.update(unique)

    def _check_image_folder(self) -> None:
        annotations = self.load_annotations()
        image_dir = annotations.image_paths[0].parent if len(annotations) else None
        if image_dir is not None and not image_dir.is_dir():
            raise DatasetError(
                f"{self.dataset.name} images not found: looked for the folder {image_dir.resolve()}"
            )

    def check_split_images(self, splits: list[str], consequence: str) -> None:
        """:meth:`check_images` on the images of ``splits``, all listed in one error."""
        self._check_image_folder()
        annotations = self.load_annotations()
        paths, sizes = [], []
        for split in splits:
            indices = self.split_indices(split)
            paths += [annotations.image_paths[i] for i in indices]
            sizes.append(self._describe_split(split, len(indices)))
        self.check_images(paths, " and ".join(sizes), consequence)

    def setup(self, stage: str) -> None:
        """Check that every image of the stage's splits exists and decodes
        (:meth:`check_images`: all 9,000 LSPet images took 8 s on 2 busy cores), then build
        the splits and check them (:meth:`check_split`).

        Raises:
            DatasetError: images that cannot be read (all listed), a split without images, or
                an evaluated split without an image PDJ can score.
        """
        if self.trainer is not None and self.trainer.lightning_module is not None:
            self.match_model(self.trainer.lightning_module)
        validating = self.trainer is None or self.trainer.limit_val_batches != 0
        if stage == "fit":
            # flips swap left and right through the flip pairs: refuse pairs that miss joints
            # which look lateral (Skeleton.flip_pairs_problem), and say which pairs train
            skeleton = self.skeleton
            problem = skeleton.flip_pairs_problem(
                self.hparams["flip_prob"], "data.dataset.init_args.flip_pairs"
            )
            if problem is not None:
                raise DatasetError(problem)
            pl.utilities.rank_zero_info(skeleton.flip_pairs_line())
            self.check_split_images(
                ["train", "val"] if validating else ["train"], "nothing was trained"
            )
            self.splits["train"] = self.make_split("train", augment=True)
            self.check_split("train", self.splits["train"], evaluated=False)
            self.splits["val"] = self.make_split("val", augment=False)
            if validating:
                self.check_split("val", self.splits["val"], evaluated=True)
        elif stage == "validate":
            self.check_split_images(["val"], "nothing was evaluated")
            self.splits["val"] = self.make_split("val", augment=False)
            self.check_split("val", self.splits["val"], evaluated=True)
        elif stage == "test":
            self.check_split_images(["test"], "nothing was evaluated")
            self.splits["test"] = self.make_split("test", augment=False)
            self.check_split("test", self.splits["test"], evaluated=True)
        elif stage == "predict":
            source = self.predict
            if source is not None and source.video is not None:
                self.video_info = probe_video(Path(source.video))
                if source.boxes is not None:
                    self.video_boxes = read_video_detections(
                        Path(source.boxes), self.video_info.frames, source.bbox_scale
                    )
                    found = int(np.isfinite(self.video_boxes).all(axis=1).sum())
                    log.info(
                        "data.predict.boxes: %d of %d frames have a detection (the best-scoring "
                        "box); the others use the whole frame",
                        found,
                        self.video_info.frames,
                    )
                return
            if source is not None and source.image_dir is not None:
                self.predict_paths = list_images(Path(source.image_dir))
                paths, where = self.predict_paths, f"data.predict.image_dir={source.image_dir}"
                if source.boxes is not None:
                    self.predict_instances = read_detections(
                        Path(source.boxes),
                        self.predict_paths,
                        self.skeleton.category_id,
                        source.bbox_scale,
                    )
            else:
                split = self.splits["predict"] = self.make_split("test", augment=False)
                self.check_split("test", split, evaluated=False)
                paths = [split.annotations.image_paths[i] for i in split.indices]
                where = self._describe_split("test", len(split))
            self.check_images(paths, where, "nothing was predicted")

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
        """An evaluation or predict loader: fixed order, no augmentation. Its own generator
        seeds its workers: without one, starting them draws from torch's global generator,
        which training's randomness uses, and a resumed fit (whose first validation comes at
        another step) trained on differently from the run it continues (seen with workers in
        ``tests/test_resume.py``: step 6's loss 0.250 against 0.237)."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(0),
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

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """With ``augment_on: device``: a training batch, now on the model's device, is
        augmented there (:class:`~lightning_pose.data.device_augment.DeviceAugmentation`);
        every other batch is returned as it came."""
        if self.device_augmentation is not None and isinstance(batch, dict) and "augment" in batch:
            return self.device_augmentation(batch)
        return batch

    def unaugmented_train_dataloader(self, max_images: int) -> DataLoader:
        """Up to ``max_images`` training images spread evenly over the split (first and last
        included), without augmentation, in a fixed order: what a model measures on its own
        training data (the cascade's error statistics, DeepPose §3.2 Eq. 7), asked of the data
        module rather than built by the model.

        Raises:
            ValueError: ``max_images < 1``.
        """
        if max_images < 1:
            raise ValueError(
                f"unaugmented_train_dataloader: max_images must be >= 1, got {max_images}"
            )
        dataset = self.make_split("train", augment=False)
        n = min(max_images, len(dataset))
        positions = np.linspace(0, len(dataset) - 1, n).round().astype(int)
        return self._loader(Subset(dataset, positions.tolist()), shuffle=False)

    def val_dataloader(self) -> DataLoader:
        dataset = self.splits["val"]
        return self._loader(dataset, shuffle=False, sampler=self._eval_sampler(dataset))

    def test_dataloader(self) -> DataLoader:
        dataset = self.splits["test"]
        return self._loader(dataset, shuffle=False, sampler=self._eval_sampler(dataset))

    def predict_dataloader(self) -> DataLoader:
        if self.video_info is not None:
            frames = VideoFrames(
                self.video_info, self.input_size, self.highres_factor, self.video_boxes
            )
            workers = min(self.num_workers, 1)  # one reader: frames in order, each once
            return DataLoader(frames, batch_size=self.batch_size, num_workers=workers)
        if self.predict_paths is not None:
            boxes = None if self.predict_instances is None else self.predict_instances.box_px
            dataset = ImageFolderDataset(
                self.predict_image_paths(), self.input_size, self.highres_factor, boxes
            )
            return self._loader(dataset, False)
        return self._loader(self.splits["predict"], shuffle=False)

    def predict_records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``image_ids (M,)``, box ``scores (M,)`` and COCO ``category_ids (M,)`` that a
        predict sample's ``index`` points into, for COCO results: the detections' where boxes
        were given (their ``category_id``, else the dataset's); else the annotations' image ids
        (test split) or the files' numeric stems (``predict.image_dir``), score 1, the dataset's
        category (``Skeleton.category_id``)."""
        if self.predict_instances is not None:
            instances = self.predict_instances
            return instances.image_ids, instances.scores, instances.category_ids
        if self.predict_paths is not None:
            ids = np.array([image_id_of(p, i) for i, p in enumerate(self.predict_paths)])
        else:
            ids = self.load_annotations().image_ids
        categories = np.full(len(ids), self.skeleton.category_id, dtype=np.int64)
        return ids, np.ones(len(ids), dtype=np.float32), categories

    def predict_image_paths(self) -> list[Path]:
        """Image paths that a predict sample's ``index`` points into (one per box)."""
        if self.predict_instances is not None and self.predict_paths is not None:
            return [self.predict_paths[i] for i in self.predict_instances.image_index]
        if self.predict_paths is not None:
            return self.predict_paths
        return self.load_annotations().image_paths
