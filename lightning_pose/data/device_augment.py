"""Training augmentation on the model's device: the CPU path's distribution, in one batched call.

The default path (:mod:`lightning_pose.data.transforms`) augments each sample in a loader worker
with albumentations. With ``data.augment_on: device`` instead:

1. every training image is decoded once and its box crop kept as uint8 at ``R`` pixels
   (:func:`build_crop_cache`; ``R = input_size x max(device_crop_factor, highres_factor)``),
   in pinned host memory where CUDA is available, moved to the GPU on first use where it fits;
2. the loader yields the annotations and each sample's augmentation *parameters*
   (:class:`AugmentationDraws`, drawn from the sample's ``(seed, epoch, image)`` seed as the
   CPU path's are: :mod:`lightning_pose.data.sampling`), never an image;
3. after the batch reaches the device (the data module's ``on_after_batch_transfer``),
   :class:`DeviceAugmentation` gathers the crops and warps the whole batch with one
   ``affine_grid``/``grid_sample`` call (scale, rotation, translation and horizontal flip as one
   matrix per sample), moves the keypoints by the same matrices (flip pairs swapped, joints
   pushed out of the frame no longer visible) and jitters the colours, batched.

The matrices live in the box-normalised frame of :mod:`lightning_pose.codecs.box` (0 at the box
centre, +-0.5 at its edges), so one matrix serves the crop at ``R`` and the outputs at ``S`` and
``S f``; ``grid_sample(align_corners=False)`` keeps the pixel-centre convention (output pixel j
samples normalised ``(j + 0.5) / S - 0.5``). The models then build their targets from
``keypoints_norm`` on the device as on the CPU path.

Why ``affine_grid``/``grid_sample`` and not a library: torchvision.transforms.v2's functional
``affine`` and colour adjustments take one set of parameters per call (a Python loop over the
batch), and kornia (not a dependency) warps through the same ``grid_sample`` with its own
parameter sampling, which would have to be replaced to follow the CPU path's seeds.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from lightning_pose.codecs.box import encode
from lightning_pose.codecs.crop import crop_image
from lightning_pose.data.annotations import PoseAnnotations
from lightning_pose.data.dataset import PoseDataset, load_image, normaliser_px
from lightning_pose.data.transforms import build_augmentation

log = logging.getLogger(__name__)

COLOUR_P = 0.8  # ColorJitter's probability in build_augmentation
GRAY = (0.299, 0.587, 0.114)  # OpenCV's RGB -> gray weights, as albumentations' jitter uses
IDENTITY_COLOUR = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation factors; hue shift


class AugmentationDraws:
    """One sample's augmentation parameters, distributed as the CPU path's albumentations
    pipeline (:func:`~lightning_pose.data.transforms.build_augmentation`, albumentations 2.0.8)
    draws them:

    * ``scale (2,)``: x and y zoom, each uniform in ``[1 - scale, 1 + scale]`` (``A.Affine``
      draws them independently: ``keep_ratio=False``);
    * ``rotation_deg ()``: uniform in ``[-rotation_deg, rotation_deg]``;
    * ``translate_norm (2,)``: uniform in ``[-translate, translate]`` of the crop side, truncated
      to whole pixels of the CPU path's crop (``crop_side``) as ``A.Affine`` does;
    * ``flip ()``: bool, with probability ``flip_prob``;
    * ``colour (4,)``: with probability 0.8 (``A.ColorJitter(p=0.8)``), brightness, contrast and
      saturation factors uniform in ``[max(0, 1 - c), 1 + c]`` and a hue shift uniform in
      ``[-c / 10, c / 10]`` of a turn; else the identity ``(1, 1, 1, 0)``;
    * ``colour_order (4,)``: the order the four adjustments are applied in, a random
      permutation of (brightness, contrast, saturation, hue).

    ``tests/data/test_device_augment.py`` compares the draws with albumentations' own.
    :meth:`set_random_seed` is what :class:`~lightning_pose.data.sampling.SeededAugmentation`
    calls before each sample, so the draws are a function of ``(seed, epoch, image)``.

    Raises:
        ValueError: a range out of bounds (as :func:`build_augmentation`).
    """

    def __init__(
        self,
        scale: float,
        rotation_deg: float,
        translate: float,
        flip_prob: float,
        color_jitter: float,
        crop_side: int,
    ) -> None:
        build_augmentation(scale, rotation_deg, translate, flip_prob, color_jitter)  # validates
        self.scale, self.rotation_deg, self.translate = scale, rotation_deg, translate
        self.flip_prob, self.color_jitter, self.crop_side = flip_prob, color_jitter, crop_side
        self.rng = np.random.default_rng()

    def set_random_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def draw(self) -> dict[str, np.ndarray]:
        """One sample's parameters (see the class docstring)."""
        rng, c = self.rng, self.color_jitter
        scale = rng.uniform(1.0 - self.scale, 1.0 + self.scale, 2)
        rotation = rng.uniform(-self.rotation_deg, self.rotation_deg)
        shift_px = np.trunc(rng.uniform(-self.translate, self.translate, 2) * self.crop_side)
        flip = rng.random() < self.flip_prob
        colour = np.array(IDENTITY_COLOUR)
        if c > 0 and rng.random() < COLOUR_P:
            low = max(0.0, 1.0 - c)
            colour = np.array([*rng.uniform(low, 1.0 + c, 3), rng.uniform(-c / 10, c / 10)])
        return {
            "scale": scale.astype(np.float32),
            "rotation_deg": np.float32(rotation),
            "translate_norm": (shift_px / self.crop_side).astype(np.float32),
            "flip": np.bool_(flip),
            "colour": colour.astype(np.float32),
            "colour_order": rng.permutation(4),
        }


def affine_norm(
    scale: torch.Tensor,
    rotation_deg: torch.Tensor,
    translate_norm: torch.Tensor,
    flip: torch.Tensor,
) -> torch.Tensor:
    """Each sample's augmentation as one forward map of box-normalised points, ``n' = A n + b``:
    ``A.Affine`` (zoom, then rotation, then translation, about the crop centre) followed by
    ``A.HorizontalFlip`` (``x' = -x``). In pixels of an S-crop this is albumentations' matrix
    ``C T R Z C^-1`` about the centre pixel ``(S - 1) / 2``, which is normalised 0.

    Shapes:
        scale (B, 2); rotation_deg (B,) degrees (positive turns +x towards -y: counter-clockwise
        on the screen); translate_norm (B, 2) box sides; flip (B,) bool. returns (B, 2, 3).
    """
    angle = torch.deg2rad(rotation_deg.float())
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    linear = rotation * scale.float()[:, None, :]  # (B, 2, 2): R @ diag(sx, sy)
    matrix = torch.cat([linear, translate_norm.float()[:, :, None]], dim=2)  # (B, 2, 3)
    mirror = torch.ones_like(matrix[:, :, :1])  # (B, 2, 1)
    mirror[:, 0, 0] = torch.where(flip, -1.0, 1.0)
    return matrix * mirror


def transform_points(points_norm: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """``A n + b`` for every point. Shapes: points_norm (B, K, 2), affine (B, 2, 3) ->
    (B, K, 2)."""
    return points_norm @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]


def warp_images(images: torch.Tensor, affine: torch.Tensor, size: int) -> torch.Tensor:
    """Resample each box view through its augmentation to a ``size`` square (bilinear; outside
    the crop reads 0, as ``cv2.BORDER_CONSTANT`` with fill 0 on the CPU path). Output pixel j
    samples the source at ``A^-1 (n'_j - b)``; ``grid_sample``'s [-1, 1] is twice the
    box-normalised frame.

    Shapes:
        images (B, C, H, W) float, the box at any resolution; affine (B, 2, 3)
        (:func:`affine_norm`). returns (B, C, size, size).
    """
    inverse = torch.linalg.inv(affine[:, :, :2].double())  # (B, 2, 2)
    theta = torch.cat([inverse, -2.0 * inverse @ affine[:, :, 2:].double()], dim=2)
    grid = F.affine_grid(theta.to(images.dtype), [len(images), 1, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W), OpenCV's luma weights."""
    weights = images.new_tensor(GRAY)[None, :, None, None]
    return (images * weights).sum(dim=1, keepdim=True)


def _adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image's hue by ``shift`` turns (HSV hexcone, as OpenCV's ``RGB2HSV``).

    Shapes: images (B, 3, H, W) in [0, 1]; shift (B,). returns (B, 3, H, W)."""
    value, _ = images.max(dim=1)  # (B, H, W)
    chroma = value - images.min(dim=1).values
    r, g, b = images.unbind(dim=1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    other = torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    hue = torch.where(value == r, (g - b) / safe, other)  # sextants, in [-1, 6)
    hue = torch.remainder(hue / 6.0 + shift[:, None, None], 1.0)  # (B, H, W) turns
    k = torch.remainder(torch.stack([5.0 + 6 * hue, 3.0 + 6 * hue, 1.0 + 6 * hue], 1), 6.0)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)  # (B, 3, H, W)
    return value[:, None] - chroma[:, None] * ramp


def colour_jitter(images: torch.Tensor, colour: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation and hue, each sample with its own factors and order, as
    albumentations' ``ColorJitter`` (its ``*_torchvision`` functions): brightness ``x f``;
    contrast ``x f + mean(gray) (1 - f)``; saturation ``x f + gray (1 - f)``; hue shifted in
    HSV; clipped to [0, 1] after each. Every adjustment runs on the whole batch at each of the
    four positions, with the identity for the samples that apply another one there (no
    host synchronisation).

    Shapes:
        images (B, 3, H, W) float in [0, 1]; colour (B, 4) (brightness, contrast, saturation,
        hue shift in turns); order (B, 4) int, a permutation of 0..3 per sample.
        returns (B, 3, H, W) in [0, 1].
    """
    identity = images.new_tensor(IDENTITY_COLOUR)
    colour = colour.to(images.dtype)
    for position in range(4):
        chosen = order[:, position]  # (B,)
        factor = torch.where(
            chosen[:, None] == torch.arange(4, device=images.device), colour, identity
        )  # (B, 4): this position's adjustment, the identity for the other three
        f = factor[:, :3, None, None, None]  # (B, 3, 1, 1, 1)
        images = (images * f[:, 0]).clamp(0, 1)
        mean = _gray(images).mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        images = (images * f[:, 1] + mean * (1 - f[:, 1])).clamp(0, 1)
        images = (images * f[:, 2] + _gray(images) * (1 - f[:, 2])).clamp(0, 1)
        images = _adjust_hue(images, factor[:, 3]).clamp(0, 1)
    return images


def build_crop_cache(
    annotations: PoseAnnotations, indices: np.ndarray, side: int, box_of
) -> tuple[torch.Tensor, np.ndarray]:
    """Decode every image of ``indices`` once and keep its box crop at ``side`` pixels.

    Args:
        box_of: ``box_of(index, image) -> (4,)`` the box the model sees
            (:meth:`PoseDataset.box`).

    Shapes:
        returns crops (N, 3, side, side) uint8 (pinned host memory where CUDA is available) and
        boxes (N, 4) float32 ``(cx, cy, w, h)`` original pixels.

    Raises:
        FileNotFoundError, ValueError: an image that cannot be read (see :func:`load_image`).
    """
    pin = torch.cuda.is_available()
    crops = torch.empty((len(indices), 3, side, side), dtype=torch.uint8, pin_memory=pin)
    boxes = np.empty((len(indices), 4), dtype=np.float32)

    def fill(i: int) -> None:  # OpenCV releases the GIL: a thread per core
        index = int(indices[i])
        image = load_image(annotations.image_paths[index])
        boxes[i] = box_of(index, image)
        crop = crop_image(image, boxes[i], side)  # (side, side, 3)
        crops[i].copy_(torch.from_numpy(crop).permute(2, 0, 1))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fill, range(len(indices))))
    return crops, boxes


class DeviceAugmentedDataset(PoseDataset):
    """The training split for ``data.augment_on: device``: a sample is its annotations, its
    box and its augmentation parameters (drawn by ``augmentation``, an
    :class:`AugmentationDraws`), never an image; :class:`DeviceAugmentation` makes the image
    on the device.

    Each sample has the :class:`~lightning_pose.data.dataset.PoseSample` entries but ``image``
    and ``image_hr``, with ``keypoints_norm (K, 2)`` and ``labelled``/``visible (K,)`` not yet
    augmented, plus ``cache_index ()`` (its row of the crop cache) and ``augment``, a dict of
    :meth:`AugmentationDraws.draw`'s arrays as tensors.

    Args:
        boxes: (N, 4) the box of each sample (from :func:`build_crop_cache`).
    """

    def __init__(
        self,
        annotations: PoseAnnotations,
        indices: np.ndarray,
        input_size: int,
        augmentation: AugmentationDraws,
        boxes: np.ndarray,
        highres_factor: int = 1,
    ) -> None:
        super().__init__(annotations, indices, input_size, None, highres_factor)
        self.augmentation = augmentation  # type: ignore[assignment]  # SeededAugmentation seeds it
        self._device_boxes = boxes

    def __getitem__(self, i: int) -> dict:
        index = int(self.indices[i])
        ann = self.annotations
        box = self._device_boxes[i]  # (4,)
        keypoints_px = ann.keypoints_px[index]  # (K, 2)
        labelled = ann.labelled[index]
        draws = self.augmentation.draw()  # type: ignore[union-attr]
        return {
            "keypoints_norm": torch.from_numpy(encode(keypoints_px, box).astype(np.float32)),
            "keypoints_px": torch.from_numpy(keypoints_px.astype(np.float32)),
            "labelled": torch.from_numpy(labelled.copy()),
            "visible": torch.from_numpy(ann.visible[index].copy()),
            "box": torch.from_numpy(box.copy()),
            "torso_diameter_px": normaliser_px(keypoints_px, labelled, self.skeleton.torso),
            "head_size_px": self._head_size(index, keypoints_px, labelled),
            "bbox_size_px": torch.tensor(
                0.0 if ann.bbox_size_px is None else float(ann.bbox_size_px[index])
            ),
            "area_px2": torch.tensor(0.0 if ann.area_px2 is None else float(ann.area_px2[index])),
            "image_id": torch.tensor(int(ann.image_ids[index])),  # type: ignore[index]
            "first_of_image": torch.tensor(bool(self._first_of_image[i])),
            "index": torch.tensor(index),
            "cache_index": torch.tensor(i),
            "augment": {k: torch.as_tensor(v) for k, v in draws.items()},
        }


class DeviceAugmentation:
    """Turns a batch of :class:`DeviceAugmentedDataset` into an augmented training batch on
    the batch's device (the data module calls it from ``on_after_batch_transfer``).

    Args:
        crops: (N, 3, R, R) uint8 crop cache (:func:`build_crop_cache`).
        input_size: S, the side of ``image``.
        highres_factor: f > 1 also makes ``image_hr`` at S f (``image`` is then its f x f
            average, as ``cv2.INTER_AREA`` on the CPU path).
        flip_permutation: K indices swapping left and right joints (the skeleton's).
    """

    def __init__(
        self, crops: torch.Tensor, input_size: int, highres_factor: int, flip_permutation: list[int]
    ) -> None:
        self.crops = crops
        self.input_size, self.highres_factor = input_size, highres_factor
        self.flip_permutation = list(flip_permutation)

    def _gather(self, cache_index: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The batch's crops on ``device``, (B, 3, R, R) uint8. The whole cache moves to a GPU
        once, on first use, where it takes under half of the device's free memory; else each
        batch's crops are copied from host memory."""
        if self.crops.device != device and device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            size = self.crops.numel()
            where = "moved to" if size < free / 2 else "kept in host memory, not"
            log.info("crop cache (%.2f GB) %s %s", size / 1e9, where, device)
            if size < free / 2:
                self.crops = self.crops.to(device)
        if self.crops.device == device:
            return self.crops[cache_index.to(device)]
        rows = self.crops[cache_index.cpu()]
        return rows.to(device, non_blocking=True)

    def __call__(self, batch: dict) -> dict:
        """Shapes: see :class:`~lightning_pose.data.dataset.PoseSample` (with B leading)."""
        draws = batch.pop("augment")
        index = batch.pop("cache_index")
        device = batch["keypoints_norm"].device
        affine = affine_norm(
            draws["scale"], draws["rotation_deg"], draws["translate_norm"], draws["flip"]
        )  # (B, 2, 3)
        crops = self._gather(index, device).float() / 255.0  # (B, 3, R, R)
        f = self.highres_factor
        views = warp_images(crops, affine, self.input_size * f)  # (B, 3, S f, S f)
        views = colour_jitter(views, draws["colour"], draws["colour_order"])
        if f > 1:
            batch["image_hr"] = views
            views = F.avg_pool2d(views, f)  # (B, 3, S, S)
        batch["image"] = views
        keypoints = transform_points(batch["keypoints_norm"], affine)  # (B, K, 2)
        flip = draws["flip"][:, None]  # (B, 1)
        perm = torch.as_tensor(self.flip_permutation, device=device)
        keypoints = torch.where(flip[..., None], keypoints[:, perm], keypoints)
        labelled = torch.where(flip, batch["labelled"][:, perm], batch["labelled"])
        visible = torch.where(flip, batch["visible"][:, perm], batch["visible"])
        inside = (keypoints.abs() <= 0.5).all(dim=-1)  # (B, K): inside the augmented crop
        batch |= {"keypoints_norm": keypoints, "labelled": labelled, "visible": visible & inside}
        return batch


def device_split(
    annotations: PoseAnnotations,
    indices: np.ndarray,
    input_size: int,
    highres_factor: int,
    crop_factor: int,
    ranges: dict,
) -> tuple[DeviceAugmentedDataset, DeviceAugmentation]:
    """The training split and its batch augmentation for ``data.augment_on: device``: the crop
    cache at ``input_size x max(crop_factor, highres_factor)`` pixels, decoded now.

    Args:
        ranges: the data module's augmentation settings (``scale``, ``rotation_deg``,
            ``translate``, ``flip_prob``, ``color_jitter``; see :class:`AugmentationDraws`).
    """
    side = input_size * max(crop_factor, highres_factor)
    probe = PoseDataset(annotations, indices[:0], input_size)  # its box rule, no images
    crops, boxes = build_crop_cache(annotations, indices, side, probe.box)
    draws = AugmentationDraws(
        *(float(ranges[k]) for k in ("scale", "rotation_deg", "translate", "flip_prob")),
        float(ranges["color_jitter"]),
        crop_side=input_size * highres_factor,  # the CPU path's crop, for the pixel truncation
    )
    dataset = DeviceAugmentedDataset(
        annotations, indices, input_size, draws, boxes, highres_factor=highres_factor
    )
    flip = annotations.skeleton.flip_permutation()
    return dataset, DeviceAugmentation(crops, input_size, highres_factor, flip)
