"""``predict --onnx FILE``: the same predictions.npz as ``predict --ckpt_path``; a file whose
metadata does not fit the config is refused before anything is predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main
from lightning_pose.cli.export import export_onnx
from tests.cli.test_export import REAL_IMAGES, REPO, build, save_checkpoint


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    """A coarse heat-map model (it has scores) at 64 px: its checkpoint and ONNX file."""
    model, data = build("heatmap_coarse")
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    export_onnx(model, data.skeleton, 64, 1, ckpt, tmp_path / "model.onnx")
    return ckpt, tmp_path / "model.onnx"


def predict_args(tmp_path: Path, shared_data: Path, out: Path, *extra: str) -> list[str]:
    folder = tmp_path / "images"
    if not folder.exists():
        folder.mkdir()
        for name in REAL_IMAGES[:3]:  # real LSPet images, linked, not copied
            (folder / name).symlink_to(shared_data / "lspet" / "images" / name)
    return [
        "predict",
        "-c", str(REPO / "conf" / "lspet.yaml"),
        "-c", str(REPO / "conf" / "model" / "heatmap_budget.yaml"),
        "--model.init_args.trunk=lightning_pose.models.ResNetTrunk",
        "--data.input_size=64", "--data.num_workers=0", "--data.batch_size=2",
        "--data.cache_images=false", "--trainer.accelerator=cpu", "--trainer.devices=1",
        "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        # no --trainer.precision: the recipe's auto (bf16 on CPUs with native bf16) is a
        # training lever; predict runs in fp32, as the ONNX file does
        f"--data.predict.image_dir={folder}", f"--trainer.callbacks.output_dir={out}",
        *extra,
    ]  # fmt: skip


def test_predict_with_onnx_writes_what_the_checkpoint_writes(
    exported: tuple[Path, Path], tmp_path: Path, shared_data: Path
) -> None:
    ckpt, onnx = exported
    main(predict_args(tmp_path, shared_data, tmp_path / "eager", f"--ckpt_path={ckpt}"))
    main(predict_args(tmp_path, shared_data, tmp_path / "onnx", f"--onnx={onnx}"))
    eager = np.load(tmp_path / "eager" / "predictions.npz")
    from_onnx = np.load(tmp_path / "onnx" / "predictions.npz")
    keys = ["boxes_px", "keypoints_px", "names", "scores"]
    assert sorted(from_onnx.files) == sorted(eager.files) == keys
    np.testing.assert_array_equal(from_onnx["boxes_px"], eager["boxes_px"])
    assert list(from_onnx["names"]) == list(eager["names"]) == REAL_IMAGES[:3]
    # original-image pixels; see tests/cli/test_export.py for the tolerance
    np.testing.assert_allclose(from_onnx["keypoints_px"], eager["keypoints_px"], atol=0.01, rtol=0)
    np.testing.assert_allclose(from_onnx["scores"], eager["scores"], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--data.input_size=96", r"its input is 64 px, the config asks for data.input_size=96"),
        (
            "--data.dataset=lightning_pose.data.FLIC",
            r"it estimates the 14 joints .* the config's data the 11 of",
        ),
    ],
)
def test_predict_refuses_an_onnx_file_that_does_not_fit(
    exported: tuple[Path, Path], tmp_path: Path, shared_data: Path, override: str, message: str
) -> None:
    _, onnx = exported
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=rf"--onnx: {onnx} does not fit the config: {message}"):
        main(predict_args(tmp_path, shared_data, out, f"--onnx={onnx}", override))
    assert not (out / "predictions.npz").exists()


def test_onnx_is_refused_outside_predict_and_beside_a_checkpoint(
    exported: tuple[Path, Path], tmp_path: Path, shared_data: Path
) -> None:
    ckpt, onnx = exported
    args = predict_args(tmp_path, shared_data, tmp_path / "out", f"--onnx={onnx}")
    with pytest.raises(ValueError, match=r"--onnx is for predict only, not validate"):
        main(["validate", *args[1:]])
    with pytest.raises(ValueError, match=r"and --ckpt_path: give one"):
        main([*args, f"--ckpt_path={ckpt}"])


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path, shared_data: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=rf"--onnx: {bad} cannot be read as an ONNX model"):
        main(predict_args(tmp_path, shared_data, tmp_path / "out", f"--onnx={bad}"))
