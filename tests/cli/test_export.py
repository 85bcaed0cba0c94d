"""ONNX export of every model family, run under ONNX Runtime on real LSPet images, against the
eager model; the export command's refusals (a checkpoint that does not fit, an unwritable
output)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import default_collate

from lightning_pose.cli import main as cli_main
from lightning_pose.cli.export import export_onnx
from lightning_pose.cli.export import main as export_main
from lightning_pose.cli.onnx_inference import OnnxEstimate, decode_heatmaps, read_metadata
from lightning_pose.data.dataset import ImageFolderDataset
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models.heatmap import HeatmapHead, PositionRefinement

REPO = Path(__file__).resolve().parents[2]
RESNET = "--model.init_args.trunk=lightning_pose.models.ResNetTrunk"
# Each family at 64 px; ResNet-18 trunks except Tompson's own multi-resolution trunk.
FAMILIES = {
    "regression": ["conf/model/deeppose.yaml", RESNET],
    "cascade": ["conf/model/deeppose_cascade.yaml", RESNET],
    "heatmap_refinement": ["conf/model/tompson.yaml", "--model.init_args.flip_test=true"],
    "heatmap_coarse": ["conf/model/heatmap_budget.yaml", RESNET],
    "heatmap_integral": [
        "conf/model/heatmap_budget.yaml",
        RESNET,
        "-c",
        str(REPO / "conf" / "model" / "heatmap_budget" / "integral.yaml"),
    ],
    "multitask": ["conf/model/multitask.yaml", RESNET],
    "simcc": ["conf/model/simcc_budget.yaml", RESNET],
}
# Original-image pixels: float32 rounding of ONNX Runtime's kernels against torch's, scaled by
# the box (LSPet images are ~250 px on their long side, the input 64 px: 4 px per input pixel).
TOLERANCE_PX = 0.01
REAL_IMAGES = [f"im{i:05d}.jpg" for i in (10, 20, 30, 40, 50)]  # validation images


def build(family: str, *overrides: str):
    """The family's model (eval mode) and data module, as the CLI builds them."""
    config, *extra = FAMILIES[family]
    args = ["-c", str(REPO / "conf" / "lspet.yaml"), "-c", str(REPO / config)]
    args += ["--data.input_size=64", "--trainer.logger=false", *extra, *overrides]
    with mock.patch.object(sys, "argv", sys.argv[:1]):
        cli = cli_main(args, run=False)
    return cli.model.eval(), cli.datamodule


def save_checkpoint(model, datamodule, path: Path) -> Path:
    """What a fit would save, as far as export reads it: weights, the skeleton, the input
    size. Heat-map heads and the refinement get output weights of a trained scale (their
    init, std 1e-3, leaves maps near 0, whose maxima and log-Gaussian sub-cell steps float
    rounding could move)."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, HeatmapHead):
            torch.nn.init.normal_(module.out.weight, std=0.3)
        if isinstance(module, PositionRefinement):
            torch.nn.init.normal_(module.joint_weight, std=0.3)
    checkpoint = {"state_dict": model.state_dict(), "pytorch-lightning_version": pl.__version__}
    checkpoint["datamodule_hyper_parameters"] = {"input_size": datamodule.input_size}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def real_batch(shared_data: Path, datamodule, n: int) -> dict[str, torch.Tensor]:
    paths = [shared_data / "lspet" / "images" / name for name in REAL_IMAGES[:n]]
    dataset = ImageFolderDataset(paths, datamodule.input_size, datamodule.highres_factor)
    batch = default_collate([dataset[i] for i in range(n)])
    batch["index"] = torch.arange(n)
    return batch


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_runs_under_onnxruntime_as_eager(
    family: str, tmp_path: Path, shared_data: Path
) -> None:
    model, data = build(family)
    if family == "heatmap_integral":  # the overlay config took effect
        assert model.coarse_loss == "integral"
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    out = tmp_path / "model.onnx"
    metadata = export_onnx(model, data.skeleton, 64, data.highres_factor, ckpt, out)

    stored = read_metadata(out)
    assert stored == metadata
    assert json.loads(stored["joint_names"]) == list(LSP_SKELETON.joints)
    assert json.loads(stored["flip_pairs"]) == [list(p) for p in LSP_SKELETON.flip_pairs]
    assert stored["input_size"] == "64" and stored["source_checkpoint"] == str(ckpt.resolve())
    assert stored["model_class"].endswith(type(model).__name__)
    has_scores = family not in ("regression", "cascade")
    windows = ["joint_window_scores", "part_window_scores"] if family == "multitask" else []
    expected = ["keypoints_px", "scores", *windows] if has_scores else ["keypoints_px"]
    assert json.loads(stored["outputs"]) == expected

    session = OnnxEstimate(out, 64)
    assert session.inputs == (["image", "image_hr"] if family == "cascade" else ["image"])
    for n in (1, 5):  # batches other than the traced one (2): the batch axis is dynamic
        batch = real_batch(shared_data, data, n)
        with torch.no_grad():
            eager = model.predict_step(batch, 0)
            model.estimate = session
            exported = model.predict_step(batch, 0)
            del model.estimate  # the class's method again
        assert exported.keys() == eager.keys()
        assert exported["keypoints_px"].shape == (n, 14, 2)
        torch.testing.assert_close(
            exported["keypoints_px"], eager["keypoints_px"], atol=TOLERANCE_PX, rtol=0
        )
        for key in expected[1:]:  # probabilities and heat-map maxima
            torch.testing.assert_close(exported[key], eager[key], atol=1e-5, rtol=0)


def export_args(tmp_path: Path, ckpt: Path, out: Path, *overrides: str) -> list[str]:
    config, *extra = FAMILIES["regression"]
    return [
        "-c", str(REPO / "conf" / "lspet.yaml"), "-c", str(REPO / config),
        "--data.input_size=64", *extra, *overrides,
        "--ckpt_path", str(ckpt), "--format", "onnx", str(out),
    ]  # fmt: skip


def test_export_command_writes_the_file(tmp_path: Path) -> None:
    model, data = build("regression")
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    out = tmp_path / "exported" / "model.onnx"
    metadata = export_main(export_args(tmp_path, ckpt, out))
    assert read_metadata(out) == metadata
    assert metadata["source_checkpoint_sha256"] != ""


def test_export_refuses_a_checkpoint_that_does_not_fit(tmp_path: Path) -> None:
    model, data = build("regression", "--data.input_size=96")
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    out = tmp_path / "model.onnx"
    with pytest.raises(ValueError, match=r"does not fit the config: it was trained on 96 px"):
        export_main(export_args(tmp_path, ckpt, out))
    assert not out.exists()


def test_export_names_an_unwritable_output_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "model.onnx"
    start = time.perf_counter()
    # The checkpoint does not exist either: the output is checked first, before any model.
    with pytest.raises(OSError, match=rf"export output {out}: cannot write to"):
        export_main(export_args(tmp_path, tmp_path / "missing.ckpt", out))
    assert time.perf_counter() - start < 5.0


def test_export_refuses_a_loose_override(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        export_main(["--ckpt_path", "x.ckpt", "--data.input_size", "64", "out.onnx"])
    assert exit_info.value.code == 2  # a usage error, before any checkpoint is read
    err = capsys.readouterr().err
    assert "unrecognised arguments ['--data.input_size', 'out.onnx']" in err
    assert "write config overrides as --key=value" in err


def test_exported_keypoints_are_input_pixels(tmp_path: Path, shared_data: Path) -> None:
    """keypoints_px is in pixels of the S x S input: box-normalised n -> (n + 0.5) S - 0.5."""
    model, data = build("regression")
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    out = tmp_path / "model.onnx"
    export_onnx(model, data.skeleton, 64, 1, ckpt, out)
    import onnxruntime as ort

    batch = real_batch(shared_data, data, 2)
    (keypoints_px,) = ort.InferenceSession(str(out)).run(None, {"image": batch["image"].numpy()})
    with torch.no_grad():
        keypoints_norm = model.estimate(batch)["stages"][-1].numpy()
    np.testing.assert_allclose(keypoints_px, (keypoints_norm + 0.5) * 64 - 0.5, atol=1e-4, rtol=0)


def test_export_names_a_missing_checkpoint(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(FileNotFoundError, match=rf"--ckpt_path: {missing} does not exist"):
        export_main(export_args(tmp_path, missing, tmp_path / "model.onnx"))
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("flip_test", [False, True])
def test_heatmap_export_runs_in_opencv_dnn_as_eager(
    flip_test: bool, tmp_path: Path, shared_data: Path
) -> None:
    """``--heatmaps``: the file loads in OpenCV 5's DNN module (the default export, with its
    boolean decoding ops, does not: ``NaryEltwiseLayerImpl::getTypes``), its heat-maps equal
    the eager model's, and ``decode_heatmaps`` of them gives the eager keypoints and scores;
    ``predict --onnx`` (``OnnxEstimate``) decodes such a file the same way."""
    import cv2

    model, data = build("heatmap_coarse", f"--model.init_args.flip_test={flip_test}")
    ckpt = save_checkpoint(model, data, tmp_path / "model.ckpt")
    out = tmp_path / "heatmaps.onnx"
    metadata = export_onnx(model, data.skeleton, 64, 1, ckpt, out, heatmaps=True)
    assert json.loads(metadata["outputs"]) == ["heatmaps"]
    assert read_metadata(out)["heatmap_decoder"] == "dark"

    batch = real_batch(shared_data, data, 5)
    with torch.no_grad():
        eager_maps = model.heatmaps(batch["image"], flip=flip_test)["coarse"].numpy()
        estimate = model.estimate(batch)
        eager = model.predict_step(batch, 0)
    eager_px = ((estimate["stages"][-1] + 0.5) * 64 - 0.5).numpy()  # (B, K, 2) input pixels
    net = cv2.dnn.readNetFromONNX(str(out))
    net.setInput(batch["image"].numpy())
    maps = net.forward()  # (B, K, 16, 16)
    assert maps.shape == (5, 14, 16, 16)
    # float32 rounding of OpenCV's kernels against torch's, on maps of magnitude ~3
    np.testing.assert_allclose(maps, eager_maps, atol=1e-4, rtol=0)
    keypoints_px, scores = decode_heatmaps(maps, 64, "dark")
    # input pixels; 4 original pixels per input pixel on these ~250 px images
    np.testing.assert_allclose(keypoints_px, eager_px, atol=TOLERANCE_PX / 4, rtol=0)
    np.testing.assert_allclose(scores, estimate["scores"].numpy(), atol=1e-4, rtol=0)

    with torch.no_grad():
        model.estimate = OnnxEstimate(out, 64)
        exported = model.predict_step(batch, 0)
        del model.estimate
    torch.testing.assert_close(
        exported["keypoints_px"], eager["keypoints_px"], atol=TOLERANCE_PX, rtol=0
    )
    torch.testing.assert_close(exported["scores"], eager["scores"], atol=1e-5, rtol=0)


def test_heatmap_export_refuses_a_model_without_heatmaps(tmp_path: Path) -> None:
    model, data = build("regression")
    with pytest.raises(ValueError, match=r"--heatmaps: DeepPose has no heat-maps"):
        export_onnx(model, data.skeleton, 64, 1, None, tmp_path / "m.onnx", heatmaps=True)
    assert not (tmp_path / "m.onnx").exists()
