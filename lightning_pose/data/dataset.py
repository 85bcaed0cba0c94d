"""The torch Dataset shared by every model variant: image -> box crop -> (augmented) sample."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NotRequired, TypedDict

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_pose.codecs.box import encode, whole_image_box
from lightning_pose.codecs.crop import crop_image
from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid
from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.annotations import PoseAnnotations
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.data.transforms import augment


class PoseSample(TypedDict):
    """One sample; a batch is the same dict with a leading batch dimension B.

    Shapes:
        image: (3, S, S) float32 RGB in [0, 1] (the model normalises it).
        keypoints_norm: (K, 2) box-normalised target in the network's input frame (after
            augmentation; DeepPose §3, Eq. 1).
        keypoints_px: (K, 2) labels in original-image pixels, before augmentation.
        labelled: (K,) bool: the joint's position is annotated (occluded joints included);
            losses and metrics count labelled joints. Follows the joints through a flip.
        visible: (K,) bool: labelled as not occluded; when augmenting, also inside the
            augmented crop (joints pushed out of the frame stay in the sample, still labelled).
        box: (4,) ``(cx, cy, w, h)`` original-image pixels: the box the model sees (the
            reader's ``box_px``, or the whole image padded to a square).
        torso_diameter_px: () left shoulder to right hip, pixels (DeepPose §5); 0 where either
            joint is not labelled or the skeleton has no torso (the sample is then left out of
            PDJ).
        head_size_px: () the reader's head size (MPII: 0.6 x head-box diagonal), else neck to
            head top, pixels (PCKh); 0 where undefined.
        bbox_size_px: () ``max(w, h)`` of the annotated person box, pixels (bbox-PCK); 0 where
            the dataset has no person boxes.
        area_px2: () object area, pixels² (OKS); 0 where the dataset gives none.
        image_id: () int64, shared by the instances of one image (COCO ``image_id``).
        first_of_image: () bool, the first instance of its image among the dataset's
            (``indices``); their sum over the dataset counts distinct images exactly, however
            it is sharded (``count/images`` beside ``count/instances``).
        index: () int, position in the annotations (one instance).
        image_hr: (3, S*f, S*f) float32, the same (augmented) view at ``highres_factor`` f > 1
            times the resolution, for models that re-crop it (the DeepPose cascade); absent
            when f = 1.
    """

    image: torch.Tensor
    keypoints_norm: torch.Tensor
    keypoints_px: torch.Tensor
    labelled: torch.Tensor
    visible: torch.Tensor
    box: torch.Tensor
    torso_diameter_px: torch.Tensor
    head_size_px: torch.Tensor
    bbox_size_px: torch.Tensor
    area_px2: torch.Tensor
    image_id: torch.Tensor
    first_of_image: torch.Tensor
    index: torch.Tensor
    image_hr: NotRequired[torch.Tensor]


# A collated batch: the entries of PoseSample with a leading batch dimension B
# (keypoints_px (B, K, 2), labelled (B, K), torso_diameter_px (B,), ...). Models, losses and
# metrics take it; the one batch type of the package.
Batch = PoseSample


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


JPEG_SOI, JPEG_EOI, JPEG_SOS = b"\xff\xd8", b"\xff\xd9", 0xDA
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the whole 12-byte IEND chunk, CRC included


def _jpeg_is_truncated(data: bytes) -> bool:
    """Whether a JPEG's marker segments are intact but the file ends before the end-of-image
    marker (EOI, FF D9) that follows the compressed image data.

    Walks the segments from SOI to the first start-of-scan (SOS) by their lengths, so an EOI
    inside an EXIF thumbnail does not count, then looks for EOI after it: inside entropy-coded
    data an FF byte is always followed by 00 or a restart marker, so an EOI there is the end of
    the image (bytes a camera appends after it are ignored). A damaged header (no marker where
    one must be) is left to the decoder. ITU-T T.81 §B.1.1.
    """
    pos = 2  # after SOI
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False  # not a marker where one must be: damaged, not truncated
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == JPEG_SOS:
            return data.find(JPEG_EOI, pos + 2 + length) == -1
        pos += 2 + length
    return True  # the header itself is cut short


def load_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3).

    A truncated JPEG or PNG is an error, not a partly grey image: libjpeg decodes a JPEG cut
    short with only a warning ("Premature end of JPEG file"), filling the rest with grey.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file exists but is truncated (a JPEG without its end-of-image marker
            after the image data, a PNG without its IEND chunk) or cannot be decoded.
    """
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = path.read_bytes()
    if data.startswith(JPEG_SOI) and _jpeg_is_truncated(data):
        raise ValueError(
            f"{path}: truncated JPEG ({len(data)} bytes, no end-of-image marker FF D9 after "
            "the image data); expected a complete file"
        )
    if data.startswith(PNG_SIGNATURE) and PNG_IEND not in data:
        raise ValueError(
            f"{path}: truncated PNG ({len(data)} bytes, no IEND chunk); expected a complete file"
        )
    if not data:
        raise ValueError(f"{path}: cannot be decoded as an image (empty file, 0 bytes)")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV raises for some malformed files instead of returning None
        image = None
    if image is None:
        raise ValueError(f"{path}: cannot be decoded as an image (expected JPEG/PNG/BMP)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def unreadable_images(paths: list[Path]) -> list[str]:
    """Decode every image of ``paths`` (see :func:`load_image`) and describe each that fails:
    one line per bad file, naming it and why, in the order of ``paths``; empty when all
    decode. Decoded on a thread per CPU core (OpenCV releases the GIL)."""

    def problem(path: Path) -> str | None:
        try:
            load_image(path)
        except (OSError, ValueError) as err:
            return str(err)
        return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [p for p in pool.map(problem, paths, chunksize=64) if p is not None]


def normaliser_px(
    keypoints_px: np.ndarray, labelled: np.ndarray, joints: tuple[int, int] | None
) -> torch.Tensor:
    """A sample's segment length in pixels (``codecs.segments.segment_lengths``), 0 where
    undefined (no such segment, or an end not labelled). Returns () float32."""
    if joints is None:
        return torch.tensor(0.0)
    kp = torch.from_numpy(keypoints_px.astype(np.float32))[None]  # (1, K, 2)
    return segment_lengths(kp, torch.from_numpy(labelled)[None], joints)[0]


class PoseDataset(Dataset):
    """Samples of a subset of :class:`PoseAnnotations`.

    The crop is taken from the reader's ``box_px`` (never derived from the ground-truth
    joints), or from the whole image padded to a square where the reader gives no box.

    Args:
        annotations: the whole dataset's annotations.
        indices: positions of this subset's instances in ``annotations``.
        input_size: side S of the square crop the network sees, pixels.
        augmentation: albumentations pipeline for training, None for val/test/predict.
        highres_factor: f > 1 adds ``image_hr``, the view at f x ``input_size`` (augmentation
            is applied at that resolution, then ``image`` is resized from it).
        cache_images: decode every image once, in the constructor, and keep its box crop at
            the network's resolution (uint8, (N, S*f, S*f, 3): 8,100 LSPet training images at
            S = 160 take 0.6 GB), so that a sample costs its augmentation only. Data-loader
            workers started by fork share the array. The crop does not depend on the
            augmentation, so samples are identical with and without the cache.

    Raises:
        FileNotFoundError, ValueError: with ``cache_images``, an image that cannot be read (see
            :func:`load_image`), at construction.
    """

    def __init__(
        self,
        annotations: PoseAnnotations,
        indices: np.ndarray,
        input_size: int,
        augmentation: A.Compose | None = None,
        highres_factor: int = 1,
        cache_images: bool = False,
    ) -> None:
        if highres_factor < 1:
            raise ValueError(f"highres_factor must be >= 1, got {highres_factor}")
        self.annotations = annotations
        self.indices = np.asarray(indices, dtype=np.int64)
        self.input_size = input_size
        self.augmentation = augmentation
        self.highres_factor = highres_factor
        self.skeleton: Skeleton = annotations.skeleton
        self._flip_permutation = self.skeleton.flip_permutation()
        ids = np.asarray(annotations.image_ids)[self.indices]  # (N,)
        self._first_of_image = np.zeros(len(ids), dtype=bool)  # (N,)
        self._first_of_image[np.unique(ids, return_index=True)[1]] = True
        self._crops: np.ndarray | None = None  # (N, S*f, S*f, 3) uint8 with cache_images
        self._boxes: list[np.ndarray] | None = None  # N boxes (4,)
        if cache_images:
            self._cache_crops()

    def _cache_crops(self) -> None:
        """Decode every image and keep its box crop (see ``cache_images``)."""
        side = self.input_size * self.highres_factor
        crops = np.empty((len(self.indices), side, side, 3), dtype=np.uint8)
        boxes = []
        for i, index in enumerate(self.indices):
            crops[i], box = self._crop(int(index))
            boxes.append(box)
        self._crops, self._boxes = crops, boxes

    def _crop(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Example ``index``'s box crop ``(S*f, S*f, 3)`` uint8 and its box ``(4,)``."""
        image = load_image(self.annotations.image_paths[index])
        box = self.box(index, image)
        return crop_image(image, box, self.input_size * self.highres_factor), box

    def __len__(self) -> int:
        return len(self.indices)

    def box(self, index: int, image: np.ndarray) -> np.ndarray:
        """The box the model sees for instance ``index``: (4,) ``(cx, cy, w, h)`` pixels, the
        reader's ``box_px`` or, where it gives none, the whole image padded to a square."""
        if self.annotations.box_px is not None:
            return self.annotations.box_px[index]
        return whole_image_box(image.shape[1], image.shape[0])

    def __getitem__(self, i: int) -> PoseSample:
        index = int(self.indices[i])
        ann = self.annotations
        if self._crops is not None and self._boxes is not None:
            crop, box = self._crops[i].copy(), self._boxes[i]
        else:
            crop, box = self._crop(index)  # (S, S, 3)
        keypoints_px = ann.keypoints_px[index]  # (K, 2)
        labelled, visible = ann.labelled[index], ann.visible[index]  # (K,), (K,)
        S = self.input_size * self.highres_factor
        keypoints_crop = norm_to_grid(encode(keypoints_px, box), S)  # (K, 2) crop pixels
        if self.augmentation is not None:
            crop, keypoints_crop, labelled, visible = augment(
                self.augmentation,
                crop,
                keypoints_crop,
                labelled,
                visible,
                self._flip_permutation,
            )
        keypoints_norm = grid_to_norm(keypoints_crop, S)
        extra = {}
        if self.highres_factor > 1:
            extra["image_hr"] = to_tensor(crop)
            size = (self.input_size, self.input_size)
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        truth_labelled = ann.labelled[index]  # normalisers: the labels, before augmentation
        return PoseSample(
            image=to_tensor(crop),
            keypoints_norm=torch.from_numpy(keypoints_norm.astype(np.float32)),
            keypoints_px=torch.from_numpy(keypoints_px.astype(np.float32)),
            labelled=torch.from_numpy(labelled.copy()),
            visible=torch.from_numpy(visible.copy()),
            box=torch.from_numpy(box.astype(np.float32)),
            torso_diameter_px=normaliser_px(keypoints_px, truth_labelled, self.skeleton.torso),
            head_size_px=self._head_size(index, keypoints_px, truth_labelled),
            bbox_size_px=_optional(ann.bbox_size_px, index),
            area_px2=_optional(ann.area_px2, index),
            image_id=torch.tensor(int(ann.image_ids[index])),  # type: ignore[index]
            first_of_image=torch.tensor(bool(self._first_of_image[i])),
            index=torch.tensor(index),
            **extra,
        )

    def _head_size(
        self, index: int, keypoints_px: np.ndarray, labelled: np.ndarray
    ) -> torch.Tensor:
        """The reader's head size where it gives one (MPII head boxes), else the head segment."""
        if self.annotations.head_size_px is not None:
            return torch.tensor(float(self.annotations.head_size_px[index]))
        return normaliser_px(keypoints_px, labelled, self.skeleton.head)


def _optional(values: np.ndarray | None, index: int) -> torch.Tensor:
    """``values[index]`` as a () float32 tensor, 0 where the reader gives no such values."""
    return torch.tensor(0.0 if values is None else float(values[index]))


def predict_sample(
    image: np.ndarray, box: np.ndarray, index: int, input_size: int, highres_factor: int = 1
) -> dict[str, torch.Tensor]:
    """A predict sample: ``image (3, S, S)`` the box resampled to ``S = input_size``, ``box
    (4,)`` ``(cx, cy, w, h)`` pixels, ``index ()`` and, for ``highres_factor`` f > 1,
    ``image_hr (3, S f, S f)`` (the DeepPose cascade's sub-images are cut from it).

    Shapes:
        image: (H, W, 3) RGB uint8; box: (4,) float32.
    """
    sample = {
        "image": to_tensor(crop_image(image, box, input_size)),
        "box": torch.from_numpy(box),
        "index": torch.tensor(index),
    }
    if highres_factor > 1:
        sample["image_hr"] = to_tensor(crop_image(image, box, input_size * highres_factor))
    return sample


class ImageFolderDataset(Dataset):
    """Unannotated images for ``predict``: by default the whole image, padded to a square, is
    the box; with ``boxes``, one sample per box (person detections).

    Each sample has ``image (3, S, S)``, ``box (4,)``, ``index ()`` and, for
    ``highres_factor`` f > 1, ``image_hr (3, S*f, S*f)`` as in :class:`PoseSample`.

    Args:
        paths: the image of each sample (an image with several boxes appears once per box).
        boxes: (N, 4) ``(cx, cy, w, h)`` pixels, one per path; None = the whole images.
    """

    def __init__(
        self,
        paths: list[Path],
        input_size: int,
        highres_factor: int = 1,
        boxes: np.ndarray | None = None,
    ) -> None:
        if boxes is not None and boxes.shape != (len(paths), 4):
            raise ValueError(f"boxes must have shape ({len(paths)}, 4), got {boxes.shape}")
        self.paths = paths
        self.input_size = input_size
        self.highres_factor = highres_factor
        self.boxes = boxes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = load_image(self.paths[i])
        if self.boxes is None:
            box = whole_image_box(image.shape[1], image.shape[0])
        else:
            box = self.boxes[i].astype(np.float32)
        return predict_sample(image, box, i, self.input_size, self.highres_factor)
