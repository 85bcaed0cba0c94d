"""PoseDataset on real LSPet images and on FLIC annotations: shapes, the codec round trip,
visibility, normalisers, the high-resolution view and augmentation."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from lightning_pose.codecs.box import decode, torso_box_to_person_box
from lightning_pose.data.dataset import PoseDataset, load_image
from lightning_pose.data.readers import PoseAnnotations, read_flic, read_lspet
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.data.transforms import build_augmentation
from tests.conftest import TINY_SAMPLES, write_lspet

S = 64  # crop side for every test here
# LSPet positions (0-based): 1 has every joint visible; 10 has the right hip and the neck not
# visible, so neither normaliser is defined there.
ALL_VISIBLE, NO_NORMALISERS = 1, 10


@pytest.fixture(scope="module")
def lspet(shared_data: Path) -> PoseAnnotations:
    return read_lspet(shared_data / "lspet")


def test_sample_keys_shapes_and_dtypes(lspet: PoseAnnotations) -> None:
    sample = PoseDataset(lspet, np.array([ALL_VISIBLE]), S)[0]
    expected = {
        "image": ((3, S, S), torch.float32),
        "keypoints_norm": ((14, 2), torch.float32),
        "keypoints_px": ((14, 2), torch.float32),
        "labelled": ((14,), torch.bool),
        "visible": ((14,), torch.bool),
        "box": ((4,), torch.float32),
        "torso_diameter_px": ((), torch.float32),
        "head_size_px": ((), torch.float32),
        "bbox_size_px": ((), torch.float32),
        "area_px2": ((), torch.float32),
        "image_id": ((), torch.int64),
        "first_of_image": ((), torch.bool),
        "index": ((), torch.int64),
    }
    assert set(sample) == set(expected)  # no image_hr at highres_factor 1
    for key, (shape, dtype) in expected.items():
        assert tuple(sample[key].shape) == shape, key
        assert sample[key].dtype == dtype, key
    assert 0.0 <= sample["image"].min() and sample["image"].max() <= 1.0
    assert sample["image"].std() > 0.05  # a real photo, not a black crop
    assert int(sample["index"]) == ALL_VISIBLE


@pytest.mark.parametrize("index", [0, ALL_VISIBLE, 2, NO_NORMALISERS])
def test_without_augmentation_decode_gives_original_pixels(
    lspet: PoseAnnotations, index: int
) -> None:
    sample = PoseDataset(lspet, np.array([index]), S)[0]
    torch.testing.assert_close(
        sample["keypoints_px"], torch.from_numpy(lspet.keypoints_px[index]), rtol=0, atol=0
    )
    decoded = decode(sample["keypoints_norm"], sample["box"])  # (K, 2)
    torch.testing.assert_close(decoded, sample["keypoints_px"], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(sample["visible"].numpy(), lspet.visible[index])


def test_whole_image_box_is_the_padded_image(lspet: PoseAnnotations) -> None:
    sample = PoseDataset(lspet, np.array([0]), S)[0]
    height, width = 105, 157  # im00001.jpg
    expected = torch.tensor([(width - 1) / 2, (height - 1) / 2, width, width])
    torch.testing.assert_close(sample["box"], expected, rtol=0, atol=1e-5)


def test_torso_diameter_and_head_size(lspet: PoseAnnotations) -> None:
    dataset = PoseDataset(lspet, np.array([ALL_VISIBLE, NO_NORMALISERS]), S)
    kp = lspet.keypoints_px[ALL_VISIBLE]
    (lsho_x, lsho_y), (rhip_x, rhip_y) = kp[9], kp[2]  # left shoulder, right hip
    (neck_x, neck_y), (top_x, top_y) = kp[12], kp[13]  # neck, head top
    defined = dataset[0]
    torch.testing.assert_close(
        defined["torso_diameter_px"],
        torch.tensor(float(np.hypot(lsho_x - rhip_x, lsho_y - rhip_y))),
        rtol=1e-6,
        atol=1e-4,
    )
    torch.testing.assert_close(
        defined["head_size_px"],
        torch.tensor(float(np.hypot(neck_x - top_x, neck_y - top_y))),
        rtol=1e-6,
        atol=1e-4,
    )
    assert defined["torso_diameter_px"] > 10 and defined["head_size_px"] > 5
    undefined = dataset[1]
    assert not lspet.visible[NO_NORMALISERS, 2] and not lspet.visible[NO_NORMALISERS, 12]
    assert float(undefined["torso_diameter_px"]) == 0.0
    assert float(undefined["head_size_px"]) == 0.0


def test_highres_view_is_twice_the_size_and_image_its_area_resize(
    lspet: PoseAnnotations,
) -> None:
    plain = PoseDataset(lspet, np.array([ALL_VISIBLE]), S)[0]
    high = PoseDataset(lspet, np.array([ALL_VISIBLE]), S, highres_factor=2)[0]
    assert high["image_hr"].shape == (3, 2 * S, 2 * S)
    assert high["image"].shape == (3, S, S)
    # INTER_AREA at factor 2 is the mean of each 2x2 block, rounded to uint8.
    pooled = F.avg_pool2d(high["image_hr"][None], 2)[0]
    torch.testing.assert_close(high["image"], pooled, rtol=0, atol=1.0 / 255 + 1e-6)
    # The same view as the direct crop, up to resampling.
    assert (high["image"] - plain["image"]).abs().mean() < 0.03
    for key in ("keypoints_norm", "keypoints_px", "labelled", "visible", "box"):
        torch.testing.assert_close(high[key], plain[key], rtol=0, atol=1e-6)


def test_highres_factor_below_one_is_rejected(lspet: PoseAnnotations) -> None:
    with pytest.raises(ValueError, match="highres_factor must be >= 1, got 0"):
        PoseDataset(lspet, np.array([0]), S, highres_factor=0)


def test_augmented_visible_joints_lie_inside_the_crop(lspet: PoseAnnotations) -> None:
    augmentation = build_augmentation(scale=0.5, rotation_deg=60.0, translate=0.3)
    augmentation.set_random_seed(0)
    dataset = PoseDataset(lspet, np.arange(8), S, augmentation=augmentation)
    plain = PoseDataset(lspet, np.arange(8), S)
    moved, hidden = 0, 0
    for i in range(len(dataset)):
        sample = dataset[i]
        norm, visible = sample["keypoints_norm"], sample["visible"]
        assert torch.isfinite(norm).all()
        assert ((norm[visible] >= -0.5) & (norm[visible] <= 0.5)).all()
        # Augmentation never makes a joint visible: the count can only drop.
        assert visible.sum() <= plain[i]["visible"].sum()
        hidden += int(plain[i]["visible"].sum() - visible.sum())
        # Labels follow the joints (a flip permutes them) but are never lost.
        assert sample["labelled"].sum() == plain[i]["labelled"].sum()
        moved += int(not torch.allclose(norm, plain[i]["keypoints_norm"], atol=1e-3))
        torch.testing.assert_close(
            sample["keypoints_px"], plain[i]["keypoints_px"], rtol=0, atol=1e-6
        )
    assert moved == len(dataset)  # the augmentation did something to every sample
    assert hidden > 0  # strong augmentation pushes some joints out of the frame


def test_flip_only_augmentation_mirrors_and_swaps_joints(lspet: PoseAnnotations) -> None:
    """Known answer: a horizontal flip of the crop maps n_x -> -n_x and swaps left/right."""
    flip = build_augmentation(
        scale=0.0, rotation_deg=0.0, translate=0.0, flip_prob=1.0, color_jitter=0.0
    )
    plain = PoseDataset(lspet, np.array([ALL_VISIBLE]), S)[0]
    flipped = PoseDataset(lspet, np.array([ALL_VISIBLE]), S, augmentation=flip)[0]
    perm = LSP_SKELETON.flip_permutation()
    expected = plain["keypoints_norm"][perm] * torch.tensor([-1.0, 1.0])
    torch.testing.assert_close(flipped["keypoints_norm"], expected, rtol=0, atol=1e-3)
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1), rtol=0, atol=1.5 / 255)


def test_flic_box_comes_from_the_torso_box(tiny_root: Path) -> None:
    flic = read_flic(tiny_root / "flic")
    indices = np.flatnonzero(flic.is_test)[:TINY_SAMPLES]
    dataset = PoseDataset(flic, indices, S)
    raw = scipy.io.loadmat(tiny_root / "flic" / "examples.mat")["examples"].ravel()
    for i, index in enumerate(indices):
        sample = dataset[i]
        # By hand from the file: square box on the torso-box centre, side 3 x its height.
        x1, y1, x2, y2 = np.asarray(raw[index]["torsobox"], np.float64).ravel() - 1.0
        by_hand = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, 3 * (y2 - y1), 3 * (y2 - y1)])
        torch.testing.assert_close(sample["box"], by_hand.float(), rtol=1e-6, atol=1e-3)
        expected = torso_box_to_person_box(np.array([x1, y1, x2, y2], np.float32), 3.0)
        torch.testing.assert_close(sample["box"], torch.from_numpy(expected), rtol=0, atol=0)
        # Not the whole 720x480 image and not the joints' bounding box.
        joints = flic.keypoints_px[index]
        joints_centre = (joints.min(0) + joints.max(0)) / 2
        assert sample["box"][2] < 480
        assert not np.allclose(sample["box"][:2].numpy(), joints_centre, atol=1.0)
        decoded = decode(sample["keypoints_norm"], sample["box"])
        torch.testing.assert_close(decoded, torch.from_numpy(joints), rtol=0, atol=1e-3)


def test_lsp_occluded_joints_are_labelled_and_keep_the_normalisers(tiny_root: Path) -> None:
    """LSP flags occlusion, not absence: an image whose torso joint is occluded still has a
    torso diameter (PDJ counts it) and its occluded joints are labelled (losses count them)."""
    from lightning_pose.data.readers import read_lsp

    lsp = read_lsp(tiny_root / "lsp")
    occluded_torso = ~lsp.visible[:, 9] | ~lsp.visible[:, 2]  # left shoulder, right hip
    index = int(np.flatnonzero(occluded_torso)[0])
    (tiny_root / "lsp" / "images").mkdir(exist_ok=True)
    from tests.conftest import write_image

    write_image(lsp.image_paths[index], 80, 100, seed=index)
    sample = PoseDataset(lsp, np.array([index]), S)[0]
    assert sample["labelled"].all()
    assert not sample["visible"].all()
    expected = np.linalg.norm(lsp.keypoints_px[index, 9] - lsp.keypoints_px[index, 2])
    torch.testing.assert_close(
        sample["torso_diameter_px"], torch.tensor(float(expected)), rtol=1e-6, atol=1e-4
    )


# --- load_image: truncated and damaged files ------------------------------------------------


def jpeg_bytes(seed: int = 0) -> bytes:
    """A complete 64x48 baseline JPEG of random pixels."""
    image = np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def with_exif_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP1 segment after SOI that holds a whole JPEG (a thumbnail, with its
    own SOS and EOI), as cameras write."""
    thumbnail = jpeg_bytes(seed=1)
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


@pytest.mark.parametrize("keep", [10, 300, 0.5, -1], ids=["header", "tables", "half", "no-eoi"])
@pytest.mark.parametrize("thumbnail", [False, True], ids=["plain", "exif-thumbnail"])
def test_truncated_jpeg_is_an_error_naming_the_path(
    tmp_path: Path, keep: float, thumbnail: bool
) -> None:
    data = jpeg_bytes()
    if thumbnail:
        data = with_exif_thumbnail(data)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data)
    assert load_image(path).shape == (48, 64, 3)  # the whole file decodes
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    if thumbnail and keep == 300:
        cut = len(data) - len(jpeg_bytes()) + 300  # inside the main image's tables
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: truncated JPEG"):
        load_image(path)


def test_jpeg_with_bytes_after_its_end_marker_loads(tmp_path: Path) -> None:
    path = tmp_path / "padded.jpg"
    path.write_bytes(jpeg_bytes() + b"\x00" * 64 + b"trailer")
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg_bytes(), np.uint8), 1), 4)  # RGB
    np.testing.assert_array_equal(load_image(path), expected)


def test_truncated_png_is_an_error_naming_the_path(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    path = tmp_path / "cut.png"
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(encoded.tobytes()[:-12])  # everything but the IEND chunk
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: truncated PNG"):
        load_image(path)


def test_real_lspet_images_are_complete(shared_data: Path) -> None:
    """No false alarm on the real data: the first 300 LSPet images load."""
    for i in range(1, 301):
        assert load_image(shared_data / "lspet" / "images" / f"im{i:05d}.jpg").ndim == 3


def test_cached_crops_give_the_same_samples(lspet: PoseAnnotations) -> None:
    indices = np.array([0, ALL_VISIBLE, 2, NO_NORMALISERS])
    augmentation = build_augmentation()
    cached = PoseDataset(lspet, indices, S, augmentation=augmentation, cache_images=True)
    plain = PoseDataset(lspet, indices, S, augmentation=augmentation, highres_factor=1)
    assert cached._crops is not None and cached._crops.shape == (4, S, S, 3)
    for i in range(len(indices)):
        for with_augmentation in (False, True):
            for dataset in (cached, plain):
                dataset.augmentation = augmentation if with_augmentation else None
            augmentation.set_random_seed(i)
            a = cached[i]
            augmentation.set_random_seed(i)
            b = plain[i]
            assert set(a) == set(b)
            for key in a:
                assert torch.equal(a[key], b[key]), (i, with_augmentation, key)
    cached.augmentation = augmentation
    first = cached._crops[0].copy()
    cached[0]
    assert np.array_equal(cached._crops[0], first)  # augmentation never writes into the cache


def test_cached_highres_crops_have_the_highres_side(lspet: PoseAnnotations) -> None:
    dataset = PoseDataset(lspet, np.array([ALL_VISIBLE]), S, highres_factor=2, cache_images=True)
    assert dataset._crops is not None and dataset._crops.shape == (1, 2 * S, 2 * S, 3)
    sample = dataset[0]
    assert sample["image_hr"].shape == (3, 2 * S, 2 * S) and sample["image"].shape == (3, S, S)


def test_cache_reports_an_unreadable_image_at_construction(tmp_path: Path) -> None:
    write_lspet(tmp_path / "lspet", 3)
    image = tmp_path / "lspet" / "images" / "im00002.jpg"
    image.write_bytes(image.read_bytes()[:200])  # truncated
    annotations = read_lspet(tmp_path / "lspet")
    PoseDataset(annotations, np.array([0, 2]), S, cache_images=True)  # the bad one left out
    with pytest.raises(ValueError, match=r"im00002\.jpg: truncated JPEG"):
        PoseDataset(annotations, np.array([0, 1]), S, cache_images=True)


def test_load_image_applies_the_exif_orientation(tmp_path: Path) -> None:
    """Keypoints are in the displayed frame (README, predict): a 20x40 JPEG stored with EXIF
    orientation 6 (rotate 90° clockwise to display) is read as 40x20."""
    from PIL import Image

    from lightning_pose.data.dataset import load_image

    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :10] = 255  # the stored image's left quarter: the displayed top
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, "JPEG", exif=exif.tobytes(), quality=100)
    image = load_image(path)
    assert image.shape == (40, 20, 3)
    assert image[:8].mean() > 240 and image[12:].mean() < 15
