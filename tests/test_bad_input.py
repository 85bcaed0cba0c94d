"""Bad input through the CLI: each error names the file or key and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lightning_pose.cli import main
from lightning_pose.data.datamodule import DATA_ROOT_ENV
from lightning_pose.data.dataset import load_image
from lightning_pose.data.readers import DatasetError

REPO = Path(__file__).resolve().parents[1]
# One training example (im00001.jpg) so the failing file is the one the first batch reads.
FIT = [
    "fit",
    "-c",
    str(REPO / "conf" / "lspet.yaml"),
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--data.num_workers=0",
    "--data.batch_size=2",
    "--data.input_size=64",
    "--data.max_samples=1",
    "--model.trunk=lightning_pose.models.ResNetTrunk",
    "--trainer.fast_dev_run=true",
]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configs' relative paths (runs/, outputs/) land in the test's folder."""
    monkeypatch.chdir(tmp_path)


def test_missing_image_file_names_the_path(tiny_root: Path) -> None:
    image = tiny_root / "lspet" / "images" / "im00001.jpg"
    image.unlink()
    with pytest.raises(FileNotFoundError, match=f"image not found: {re.escape(str(image))}"):
        main([*FIT, f"--data.root={tiny_root}"])


def test_corrupt_image_file_names_the_path(tiny_root: Path) -> None:
    image = tiny_root / "lspet" / "images" / "im00001.jpg"
    image.write_bytes(b"\xff\xd8 this is not a JPEG")
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(image))}: cannot be decoded as an image"
    ):
        main([*FIT, f"--data.root={tiny_root}"])


def test_empty_image_file_names_the_path(tmp_path: Path) -> None:
    image = tmp_path / "empty.png"
    image.write_bytes(b"")
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(image))}: cannot be decoded as an image"
    ):
        load_image(image)


def test_joints_mat_of_wrong_shape_through_the_cli(tiny_root: Path) -> None:
    mat = tiny_root / "lspet" / "joints.mat"
    scipy.io.savemat(mat, {"joints": np.zeros((3, 14, 5))})  # the LSP layout, not LSPet's
    with pytest.raises(
        DatasetError,
        match=rf"{re.escape(str(mat))}: 'joints' has shape \(3, 14, 5\), expected \(14, 3, N\)",
    ):
        main([*FIT, f"--data.root={tiny_root}"])


def test_unknown_dataset_is_a_parse_error_naming_the_choices(
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*FIT, "--data.dataset=coco"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert 'Parser key "data.dataset"' in err
    assert "'lspet', 'lsp', 'flic'" in err and "coco" in err


def test_unknown_trunk_is_a_parse_error_naming_it(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*FIT, "--model.init_args.trunk.class_path=lightning_pose.models.NoSuchNet"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert 'Parser key "trunk"' in err
    assert "'lightning_pose.models.NoSuchNet'" in err and "no attribute 'NoSuchNet'" in err


def test_nonexistent_data_root_names_the_path_and_env_var() -> None:
    with pytest.raises(
        DatasetError, match=rf"data root /nonexistent \(from data.root\) .*{DATA_ROOT_ENV}"
    ):
        main([*FIT, "--data.root=/nonexistent"])
