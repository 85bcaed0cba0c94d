"""``data.augment_on: device``: the same parameters give the CPU path's keypoints and image, the
parameters are drawn as albumentations draws them, known answers for the frame conventions, and
the data module's training batch after ``on_after_batch_transfer``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy import stats

from lightning_pose.codecs.box import encode, whole_image_box
from lightning_pose.codecs.crop import crop_image
from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.dataset import load_image
from lightning_pose.data.device_augment import (
    IDENTITY_COLOUR,
    AugmentationDraws,
    DeviceAugmentation,
    affine_norm,
)
from lightning_pose.data.readers import LSPet
from lightning_pose.data.transforms import augment, build_augmentation


def params_of_applied(applied: dict, side: int) -> dict[str, torch.Tensor]:
    """albumentations' applied parameters (``save_applied_params``) as a device-path draw of
    one sample (batch of 1). The translation is read back from ``A.Affine``'s pixel matrix
    ``q = M p``: ``t = M c + m - c`` with ``c`` the centre pixel ``(S - 1) / 2``."""
    affine = applied["Affine"]
    matrix = affine["matrix"][:2]
    centre = np.full(2, (side - 1) / 2)
    shift_px = matrix[:, :2] @ centre + matrix[:, 2] - centre
    jitter = applied.get("ColorJitter")
    colour = IDENTITY_COLOUR
    if jitter is not None:
        colour = (jitter["brightness"], jitter["contrast"], jitter["saturation"], jitter["hue"])
    return {
        "scale": torch.tensor([[affine["scale"]["x"], affine["scale"]["y"]]]),
        "rotation_deg": torch.tensor([affine["rotate"]]),
        "translate_norm": torch.tensor(shift_px[None] / side, dtype=torch.float32),
        "flip": torch.tensor(["HorizontalFlip" in applied]),
        "colour": torch.tensor([colour], dtype=torch.float32),
        "colour_order": torch.tensor([jitter["order"] if jitter else [0, 1, 2, 3]]),
    }


def device_batch(kp_norm, labelled, visible, draws) -> dict:
    return {
        "keypoints_norm": torch.from_numpy(kp_norm.astype(np.float32))[None],
        "labelled": torch.from_numpy(labelled)[None],
        "visible": torch.from_numpy(visible)[None],
        "cache_index": torch.tensor([0]),
        "augment": draws,
    }


@pytest.mark.parametrize("color_jitter", [0.0, 0.2], ids=["geometry", "with colour"])
@pytest.mark.parametrize("highres_factor", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_the_cpu_paths_parameters_give_its_keypoints_and_image_on_the_device(
    shared_data: Path, seed: int, highres_factor: int, color_jitter: float
) -> None:
    """A real LSPet image, augmented by the CPU path (albumentations, seeded); its applied
    parameters given to the device path, whose crop cache holds the same crop: the keypoints
    agree (to float rounding; 0.5 px asked) with the same labels and visibility, the image to
    uint8 rounding without colour jitter and to a few grey levels with it (albumentations
    rounds to uint8 after each adjustment and shifts hue in 2-degree steps)."""
    annotations = LSPet().read(shared_data)
    index, size = 7 * seed + 3, 32
    side = size * highres_factor
    image = load_image(annotations.image_paths[index])
    box = whole_image_box(image.shape[1], image.shape[0])
    crop = crop_image(image, box, side)  # (side, side, 3)
    kp_norm = encode(annotations.keypoints_px[index], box)  # (K, 2)
    labelled, visible = annotations.labelled[index], annotations.visible[index]
    perm = annotations.skeleton.flip_permutation()
    pipeline = build_augmentation(color_jitter=color_jitter)
    pipeline.set_random_seed(seed)
    cpu_image, cpu_kp, cpu_labelled, cpu_visible = augment(
        pipeline, crop, norm_to_grid(kp_norm, side), labelled, visible, perm
    )
    pipeline.set_random_seed(seed)  # the same draw again, to read its parameters
    applied = dict(
        pipeline(image=crop, keypoints=norm_to_grid(kp_norm, side))["applied_transforms"]
    )
    draws = params_of_applied(applied, side)

    crops = torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous()  # (1, 3, side, side)
    out = DeviceAugmentation(crops, size, highres_factor, perm)(
        device_batch(kp_norm, labelled, visible, draws)
    )
    torch.testing.assert_close(
        out["keypoints_norm"][0],
        torch.from_numpy(grid_to_norm(cpu_kp, side)).float(),
        atol=0.5 / side,  # half a pixel of the CPU path's crop
        rtol=0,
    )
    assert (out["labelled"][0].numpy() == cpu_labelled).all()
    assert (out["visible"][0].numpy() == cpu_visible).all()
    views = {"image": cpu_image}
    if highres_factor > 1:  # the CPU path resizes its augmented crop with INTER_AREA
        small = cv2.resize(cpu_image, (size, size), interpolation=cv2.INTER_AREA)
        views = {"image_hr": cpu_image, "image": small}
    for key, expected in views.items():
        diff = (out[key][0].permute(1, 2, 0) * 255 - torch.from_numpy(expected).float()).abs()
        if color_jitter == 0:  # uint8 rounding (twice with the resize), OpenCV's fixed point
            assert diff.max() <= 0.51 + 0.5 * (expected.shape[0] < side), (key, diff.max())
        else:
            assert diff.mean() <= 1.5 and diff.max() <= 10, (key, diff.mean(), diff.max())


def test_the_draws_are_distributed_as_albumentations_draws() -> None:
    """2,000 draws of each: the CPU pipeline's applied parameters (on a 40-px crop) against
    :class:`AugmentationDraws`: every marginal by a two-sample KS test, rates by their standard
    errors, scale x and y independent in both, the translation whole pixels in both."""
    n, side = 2000, 40
    pipeline = build_augmentation()  # the data module's defaults
    pipeline.set_random_seed(0)
    image, keypoints = np.zeros((side, side, 3), np.uint8), np.zeros((1, 2), np.float32)
    cpu = []
    for _ in range(n):
        applied = pipeline(image=image, keypoints=keypoints)["applied_transforms"]
        cpu.append(params_of_applied(dict(applied), side))
    cpu_draws = {k: torch.cat([d[k] for d in cpu]).numpy() for k in cpu[0]}
    drawer = AugmentationDraws(0.25, 30.0, 0.1, 0.5, 0.2, crop_side=side)
    drawer.set_random_seed(1)
    ours = [drawer.draw() for _ in range(n)]
    our_draws = {k: np.stack([d[k] for d in ours]) for k in ours[0]}
    columns = {
        "scale x": lambda d: d["scale"][:, 0],
        "scale y": lambda d: d["scale"][:, 1],
        "rotation": lambda d: d["rotation_deg"],
        "translate x": lambda d: d["translate_norm"][:, 0],
        "translate y": lambda d: d["translate_norm"][:, 1],
    }
    jittered = {
        name: d["colour"][:, 0] != 1 for name, d in (("cpu", cpu_draws), ("ours", our_draws))
    }
    for i, name in enumerate(("brightness", "contrast", "saturation", "hue")):
        columns[name] = lambda d, i=i, key=None: d["colour"][:, i]
    for name, column in columns.items():
        a, b = column(cpu_draws), column(our_draws)
        if name in ("brightness", "contrast", "saturation", "hue"):
            a, b = a[jittered["cpu"]], b[jittered["ours"]]
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    for d in (cpu_draws, our_draws):
        assert abs(np.corrcoef(d["scale"][:, 0], d["scale"][:, 1])[0, 1]) < 0.1
        px = d["translate_norm"] * side
        np.testing.assert_allclose(px, np.round(px), atol=1e-4, rtol=0)
    se = 3 * np.sqrt(0.25 / n)
    assert abs(cpu_draws["flip"].mean() - our_draws["flip"].mean()) < 2 * se
    assert abs(jittered["cpu"].mean() - jittered["ours"].mean()) < 2 * se
    # the order: each adjustment first equally often (a quarter) in both
    for d, jitter in ((cpu_draws, jittered["cpu"]), (our_draws, jittered["ours"])):
        first = np.bincount(d["colour_order"][jitter, 0], minlength=4) / jitter.sum()
        np.testing.assert_allclose(first, 0.25, atol=0.04, rtol=0)


def one_pixel_batch(x: int, y: int, draws: dict, side: int = 3) -> tuple[DeviceAugmentation, dict]:
    """A ``side``-pixel crop black but for pixel (x, y), a keypoint on that pixel (joint 0,
    LSP's right ankle) and one on the centre pixel (joint 12, the neck)."""
    crop = torch.zeros((1, 3, side, side), dtype=torch.uint8)
    crop[0, :, y, x] = 255
    kp = np.zeros((14, 2))
    kp[0] = grid_to_norm(np.array([x, y], dtype=float), side)
    ones = np.ones(14, bool)
    perm = LSPet().skeleton(Path(".")).flip_permutation()
    return DeviceAugmentation(crop, side, 1, perm), device_batch(kp, ones, ones, draws)


def draws_of(rotation_deg: float = 0.0, flip: bool = False, shift_px=(0, 0), side=3) -> dict:
    return {
        "scale": torch.ones(1, 2),
        "rotation_deg": torch.tensor([rotation_deg]),
        "translate_norm": torch.tensor([shift_px], dtype=torch.float32) / side,
        "flip": torch.tensor([flip]),
        "colour": torch.tensor([IDENTITY_COLOUR]),
        "colour_order": torch.tensor([[0, 1, 2, 3]]),
    }


@pytest.mark.parametrize(
    ("source", "draws", "moved_to", "joint"),
    [
        ((0, 1), draws_of(flip=True), (2, 1), 5),  # mirrored; the right ankle is now the left
        ((2, 1), draws_of(rotation_deg=90.0), (1, 0), 0),  # counter-clockwise on the screen
        ((0, 1), draws_of(shift_px=(-1, 1)), (-1, 2), 0),  # out of the crop: not visible
    ],
    ids=["flip", "rotate 90", "shift out"],
)
def test_known_answers_on_a_three_pixel_crop(
    source: tuple[int, int], draws: dict, moved_to: tuple[int, int], joint: int
) -> None:
    """One white pixel of a 3 x 3 crop and a keypoint (joint 0, LSP's right ankle) on it."""
    augmentation, batch = one_pixel_batch(*source, draws)
    out = augmentation(batch)
    x, y = moved_to
    expected = torch.zeros(3, 3)
    if 0 <= x < 3:
        expected[y, x] = 1.0
    torch.testing.assert_close(out["image"][0, 0], expected, atol=1e-6, rtol=0)
    kp_px = norm_to_grid(out["keypoints_norm"][0], 3)  # (K, 2)
    torch.testing.assert_close(kp_px[joint], torch.tensor([x, y]).float(), atol=1e-5, rtol=0)
    # the neck, on the centre pixel, moves with the shift alone
    neck = torch.tensor([1.0, 1.0]) + draws["translate_norm"][0] * 3
    torch.testing.assert_close(kp_px[12], neck, atol=1e-5, rtol=0)
    assert bool(out["visible"][0, joint]) == (0 <= x < 3) and bool(out["labelled"][0, joint])


def test_affine_norm_composes_zoom_rotation_translation_then_flip() -> None:
    """x' = -(R diag(sx, sy) n + t)_x after a flip; R turns +x towards -y."""
    a = affine_norm(
        torch.tensor([[2.0, 0.5]]), torch.tensor([90.0]), torch.tensor([[0.1, -0.2]]),
        torch.tensor([True]),
    )  # fmt: skip
    # n = (1, 0): zoom (2, 0), rotate (0, -2), shift (0.1, -2.2), flip (-0.1, -2.2)
    expected = torch.tensor([[[0.0, -0.5, -0.1], [-2.0, 0.0, -0.2]]])
    torch.testing.assert_close(a, expected, atol=1e-6, rtol=0)


def test_the_data_modules_device_batch_has_the_cpu_batchs_entries(shared_data: Path) -> None:
    """``augment_on: device``: the training loader yields no image; after the batch transfer
    hook the batch has the CPU path's keys, shapes and dtypes, images in [0, 1]; the
    validation batch passes through unchanged."""
    batches = {}
    for where in ("cpu", "device"):
        dm = PoseDataModule(
            LSPet(), root=str(shared_data), input_size=32, batch_size=4, num_workers=0,
            max_samples=8, augment_on=where, device_crop_factor=2,
        )  # fmt: skip
        dm.setup("fit")
        torch.manual_seed(0)  # the loader's seed: the same order on both paths
        raw = next(iter(dm.train_dataloader()))
        assert ("image" in raw) == (where == "cpu")
        batches[where] = dm.on_after_batch_transfer(raw, 0)
        val = next(iter(dm.val_dataloader()))
        assert dm.on_after_batch_transfer(val, 0) is val
    cpu, device = batches["cpu"], batches["device"]
    assert sorted(cpu) == sorted(device)
    for key, value in cpu.items():
        assert device[key].shape == value.shape and device[key].dtype == value.dtype, key
    assert 0 <= device["image"].min() and device["image"].max() <= 1
    assert dm.device_augmentation.crops.shape == (8, 3, 64, 64)
    # the same images in the same order, with the same labels and normalisers
    for key in ("index", "keypoints_px", "box", "torso_diameter_px", "head_size_px"):
        torch.testing.assert_close(cpu[key], device[key], atol=0, rtol=0, msg=key)


def test_augment_on_names_the_key_and_the_values() -> None:
    with pytest.raises(ValueError, match=r"data.augment_on must be 'cpu' or 'device', got 'gpu'"):
        PoseDataModule(LSPet(), augment_on="gpu")  # type: ignore[arg-type]
