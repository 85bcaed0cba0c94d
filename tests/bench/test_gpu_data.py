"""bench/gpu_data.py: the downscaled WebP copy of LSPet in parts, read back by the package's
reader with the joints in the same place on the smaller images."""

from __future__ import annotations

import tarfile
from pathlib import Path

import cv2
import numpy as np
from numpy.testing import assert_allclose

from lightning_pose.data.readers import read_lspet
from tests.bench import load
from tests.conftest import write_lspet

gpu_data = load("gpu_data")


def unpack(out: Path, root: Path) -> list[str]:
    names = []
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            names += tar.getnames()
            tar.extractall(root, filter="data")
    return names


def test_the_copy_is_read_back_with_joints_scaled_in_the_pixel_centre_frame(
    tmp_path: Path,
) -> None:
    write_lspet(tmp_path / "src" / "lspet", 6)  # 64 x 48 images
    manifest = gpu_data.scaled_copy(tmp_path / "src" / "lspet", tmp_path / "out", 32, 90, [0.002])
    assert manifest["downscaled"] == 6 and len(manifest["parts_mib"]) == 2
    names = unpack(tmp_path / "out", tmp_path / "root")
    images = [f"lspet/images/im{i:05d}.jpg" for i in range(1, 7)]
    assert sorted(names) == sorted(["lspet/joints.mat", *images])
    source, copy = read_lspet(tmp_path / "src" / "lspet"), read_lspet(tmp_path / "root" / "lspet")
    image = cv2.imread(str(tmp_path / "root" / "lspet" / "images" / "im00001.jpg"))
    assert image.shape == (24, 32, 3)  # WebP under the official name: decoded by content
    assert np.array_equal(copy.labelled, source.labelled)
    # 0-based pixel centres: (x + 0.5) * s - 0.5, s = 32 / 64 = 24 / 48 = 0.5
    expected = (source.keypoints_px + 0.5) * 0.5 - 0.5
    assert_allclose(copy.keypoints_px, expected, rtol=0, atol=1e-4)


def test_an_image_within_the_limit_keeps_its_size_and_joints(tmp_path: Path) -> None:
    write_lspet(tmp_path / "src" / "lspet", 3)
    manifest = gpu_data.scaled_copy(tmp_path / "src" / "lspet", tmp_path / "out", 64, 90, [])
    assert manifest["downscaled"] == 0 and len(manifest["parts_mib"]) == 1
    unpack(tmp_path / "out", tmp_path / "root")
    source, copy = read_lspet(tmp_path / "src" / "lspet"), read_lspet(tmp_path / "root" / "lspet")
    assert_allclose(copy.keypoints_px, source.keypoints_px, rtol=0, atol=1e-6)
