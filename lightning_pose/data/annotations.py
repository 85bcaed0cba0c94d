"""What a dataset is to the pipeline: a :class:`PoseReader` returning :class:`PoseAnnotations`.

A reader is picked in the config by ``class_path``, as models are::

    data:
      dataset:
        class_path: lightning_pose.data.COCOKeypoints
        init_args: {train_json: ..., val_json: ..., image_dir: ...}

It reads its files under the data root and returns one row per *instance* (one person in one
image): the image path, keypoints, ``labelled``/``visible``, the person box the crop is taken
from, the normalisers a metric needs that the joints alone do not give (MPII's head box, the
annotated person box, the object area of OKS), the split, and the dataset's :class:`Skeleton`.
``PoseDataset``, ``PoseDataModule``, the metrics and the models know no dataset names: a new
dataset is one reader class.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.skeleton import Skeleton


class DatasetError(ValueError):
    """A dataset file or folder is missing or does not have the expected layout."""


@dataclass
class PoseAnnotations:
    """Annotations of one dataset, one row per instance, in file order.

    Shapes:
        image_paths: N paths (an image with several people appears once per instance).
        keypoints_px: (N, K, 2) float32 pixels, 0 = centre of the top-left pixel.
        labelled: (N, K) bool, the position is annotated. visible: (N, K) bool, not occluded.
        box_px: (N, 4) float32 ``(cx, cy, w, h)`` pixels, the box the crop is taken from,
            never derived from the ground-truth joints; None = the whole image padded to a
            square (DeepPose stage 1), measured when the image is decoded.
        head_size_px: (N,) float32 PCKh normaliser in pixels (MPII: 0.6 x the head-box
            diagonal), 0 where undefined; None = the skeleton's head segment (neck to head
            top) measured on the labels.
        bbox_size_px: (N,) float32 ``max(w, h)`` of the annotated person box in pixels, the
            normaliser of bbox-PCK (mmpose's ``PCKAccuracy(norm_item="bbox")``); None where
            the dataset has no person boxes (bbox-PCK is then absent).
        area_px2: (N,) float32 object area in pixels² (COCO ``area``), the scale of OKS;
            None where the dataset has none (OKS AP is then absent).
        image_ids: (N,) int64, instances of one image share it (COCO ``image_id``); filled
            from ``image_paths`` where not given.
        is_train, is_val, is_test: (N,) bool split, or None where the dataset has no official
            split of that kind (``lightning_pose.data.datamodule.split_indices`` then holds
            out every ``val_every``-th training instance).
    """

    skeleton: Skeleton
    image_paths: list[Path]
    keypoints_px: np.ndarray
    labelled: np.ndarray
    visible: np.ndarray
    box_px: np.ndarray | None = None
    head_size_px: np.ndarray | None = None
    bbox_size_px: np.ndarray | None = None
    area_px2: np.ndarray | None = None
    image_ids: np.ndarray | None = None
    is_train: np.ndarray | None = None
    is_val: np.ndarray | None = None
    is_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, k = len(self.image_paths), self.skeleton.num_joints
        if self.image_ids is None:
            _, first = np.unique([str(p) for p in self.image_paths], return_inverse=True)
            self.image_ids = np.asarray(first, dtype=np.int64).reshape(n)
        expected = {
            "keypoints_px": (n, k, 2),
            "labelled": (n, k),
            "visible": (n, k),
            "box_px": (n, 4),
            "head_size_px": (n,),
            "bbox_size_px": (n,),
            "area_px2": (n,),
            "image_ids": (n,),
            "is_train": (n,),
            "is_val": (n,),
            "is_test": (n,),
        }
        for field, shape in expected.items():
            value = getattr(self, field)
            if value is not None and value.shape != shape:
                raise DatasetError(
                    f"PoseAnnotations.{field} has shape {value.shape}, expected {shape} "
                    f"({n} instances, {k} joints of skeleton {self.skeleton.name!r})"
                )

    def __len__(self) -> int:
        return len(self.image_paths)


class PoseReader:
    """A dataset: reads its annotation files and returns :class:`PoseAnnotations`.

    Subclasses take their files and options as constructor arguments (the config's
    ``init_args``; paths relative to the data root) and implement :meth:`read`.
    """

    @property
    def name(self) -> str:
        """Short name for logs, error messages and run folders, e.g. ``"lspet"``."""
        return type(self).__name__.lower()

    def read(self, root: Path) -> PoseAnnotations:
        """Every instance of the dataset under the data root ``root``.

        Raises:
            DatasetError: a file is missing or malformed (naming the file and what was
                expected).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement read(root)")

    def skeleton(self, root: Path) -> Skeleton:
        """The dataset's skeleton; readers whose skeleton is fixed return it without reading."""
        return self.read(root).skeleton

    def paths(self) -> list[str] | None:
        """The files and folders the reader reads, as configured (relative to the data root,
        or absolute); None = not stated, so the data root must exist."""
        return None

    def needs_root(self) -> bool:
        """Whether a path the reader reads is relative to the data root (or unstated): with
        absolute paths only, the data root need not exist."""
        paths = self.paths()
        return paths is None or any(not Path(p).is_absolute() for p in paths)

    def config(self) -> dict:
        """``{"class_path": ..., "init_args": ...}`` as a config would give it: each constructor
        argument's value, kept by the reader as an attribute of its name (or ``_name``)."""
        cls = type(self)
        init_args = {}
        for name in list(inspect.signature(cls.__init__).parameters)[1:]:
            value = getattr(self, f"_{name}", getattr(self, name, None))
            init_args[name] = value
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def require(path: Path, what: str, layout: str) -> Path:
    """``path`` if it exists.

    Raises:
        DatasetError: it does not; the message says where it looked and the expected layout.
    """
    if not path.exists():
        raise DatasetError(
            f"{what} not found: looked for {path.resolve()}. Expected layout: {layout}. "
            "Set `data.root` in the config or the LIGHTNING_POSE_DATA_ROOT environment variable."
        )
    return path


def read_json(path: Path, layout: str) -> object:
    """The parsed content of the JSON file ``path``.

    Raises:
        DatasetError: it is not JSON (or not UTF-8); the message names the file, the parser's
            complaint and the expected layout.
    """
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not a JSON file ({err}); expected {layout}") from err
