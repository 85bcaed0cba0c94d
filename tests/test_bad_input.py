"""Bad input through the CLI: each error names the file or key and what was expected."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from lightning_pose.cli import main
from lightning_pose.data.datamodule import DATA_ROOT_ENV
from lightning_pose.data.dataset import load_image
from lightning_pose.data.readers import DatasetError
from tests.conftest import write_image, write_lspet

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
    # found when fit sets up (all bad images listed), not when a step first draws it
    with pytest.raises(DatasetError, match=f"image not found: {re.escape(str(image))}"):
        main([*FIT, f"--data.root={tiny_root}"])


def test_a_fit_that_fails_its_image_check_leaves_no_empty_run_folder(tiny_root: Path) -> None:
    (tiny_root / "lspet" / "images" / "im00001.jpg").unlink()
    with pytest.raises(DatasetError, match="image not found"):
        main([*FIT[:-1], f"--data.root={tiny_root}", "--trainer.max_steps=1"])
    assert Path("runs", "lspet").is_dir()  # where its run folder was made
    assert not list(Path("runs", "lspet").iterdir())


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


def test_unknown_dataset_is_a_parse_error_naming_it(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*FIT, "--data.dataset=coco"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert 'Parser key "data.dataset"' in err and "coco" in err


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


def test_a_data_root_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    root = tmp_path / "data.tar"
    root.write_bytes(b"x")
    with pytest.raises(DatasetError, match=rf"data root {re.escape(str(root))} .* is a file"):
        main([*FIT, f"--data.root={root}"])


@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_batch_size_below_one_is_a_parse_error_naming_the_key(
    value: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main([*FIT, f"--data.batch_size={value}"])
    assert 'Parser key "data.batch_size"' in capsys.readouterr().err


@pytest.mark.parametrize("subcommand", ["fit", "validate"])
def test_a_model_config_without_a_dataset_config_is_refused(
    subcommand: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Before: it trained with Lightning's defaults into lightning_logs/. Without a dataset
    the parser names the missing key; with a reader given on the command line but no dataset
    config (no loggers, checkpoints or tables), the run is refused naming the configs given."""
    monkeypatch.chdir(tmp_path)
    model = str(REPO / "conf" / "model" / "deeppose.yaml")
    with pytest.raises(SystemExit):
        main([subcommand, "-c", model])
    assert f"required: {subcommand}.data.dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([subcommand, "-c", model, "--data.dataset=lightning_pose.data.LSPet"])
    err = capsys.readouterr().err
    assert "no dataset config" in err and "deeppose.yaml" in err
    assert not (tmp_path / "lightning_logs").exists()


# --- bad input never costs a run: found before any training or predicting ---------------------

PREDICT = [
    "predict",
    "-c",
    str(REPO / "conf" / "lspet.yaml"),
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--data.num_workers=0",
    "--data.batch_size=2",
    "--data.input_size=64",
    "--model.trunk=lightning_pose.models.ResNetTrunk",
]


def test_truncated_jpeg_names_the_path(tiny_root: Path) -> None:
    image = tiny_root / "lspet" / "images" / "im00001.jpg"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])  # libjpeg alone would decode it, grey-filled
    with pytest.raises(ValueError, match=rf"{re.escape(str(image))}: truncated JPEG"):
        main([*FIT, f"--data.root={tiny_root}"])


def test_fit_lists_every_missing_or_bad_image_before_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a missing training image stopped the fit at the step that first drew it (and
    a resume hit it again). Now every image of the training and validation splits is decoded
    when fit sets up, and all bad ones are listed; nothing is trained or saved."""
    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)  # images 10, 20, 30 validate
    images = root / "lspet" / "images"
    (images / "im00007.jpg").unlink()  # a training image
    (images / "im00020.jpg").write_bytes(b"not a JPEG")  # a validation image
    monkeypatch.chdir(tmp_path)
    args = [a for a in FIT if a not in ("--data.max_samples=1", "--trainer.fast_dev_run=true")]
    with pytest.raises(DatasetError) as error:
        main([*args, f"--data.root={root}", "--trainer.max_steps=2"])
    message = str(error.value)
    assert "2 of 30 images cannot be read" in message and "nothing was trained" in message
    assert "training split (27 images" in message and "validation split (3 images" in message
    assert "image not found" in message and "im00007.jpg" in message
    assert "im00020.jpg: cannot be decoded" in message
    assert not list(tmp_path.rglob("*.ckpt"))


def test_predict_lists_every_unreadable_image_before_predicting(tmp_path: Path) -> None:
    """The choice for bad predict input: stop when predict sets up, listing every bad file,
    rather than skip images; nothing is predicted or written."""
    folder = tmp_path / "frames"
    for name in ("a.png", "c.jpg"):
        write_image(folder / name, 40, 30, seed=0)
    truncated = folder / "b.jpg"
    write_image(truncated, 40, 30, seed=1)
    truncated.write_bytes(truncated.read_bytes()[:200])
    (folder / "d.png").write_bytes(b"not a PNG")
    out = tmp_path / "pred"
    with pytest.raises(DatasetError) as error:
        main(
            [
                *PREDICT,
                f"--data.predict.image_dir={folder}",
                f"--trainer.callbacks.output_dir={out}",
            ]
        )
    message = str(error.value)
    assert message.startswith(f"data.predict.image_dir={folder}: 2 of 4 images cannot be read")
    assert f"{truncated}: truncated JPEG" in message
    assert f"{folder / 'd.png'}: cannot be decoded as an image" in message
    assert "a.png" not in message and "c.jpg" not in message
    assert not (out / "predictions.npz").exists()


def test_missing_predict_image_dir_names_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(
        DatasetError,
        match=rf"data.predict.image_dir: the folder of images to predict, "
        rf"{re.escape(str(missing))}, does not exist",
    ):
        main([*PREDICT, f"--data.predict.image_dir={missing}"])


def test_predict_boxes_without_images_names_the_keys(tmp_path: Path) -> None:
    dets = tmp_path / "dets.json"
    with pytest.raises(DatasetError) as error:
        main([*PREDICT, f"--data.predict.boxes={dets}"])
    assert str(error.value).startswith(
        "data.predict needs data.predict.image_dir (a folder of images) or data.predict.video "
        f"(a video file) (data.predict.boxes={dets} names its images)"
    )


def test_unwritable_prediction_folder_fails_before_predicting(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    write_image(folder / "a.png", 40, 30, seed=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the output folder's parent should be")
    out = blocker / "pred"
    with pytest.raises(
        OSError, match=rf"PredictionWriter.output_dir: cannot write to {re.escape(str(out))}"
    ):
        main(
            [
                *PREDICT,
                f"--data.predict.image_dir={folder}",
                f"--trainer.callbacks.output_dir={out}",
            ]
        )


def test_overlay_clash_fails_before_predicting(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    for name in ("x.jpg", "x.png", "y.png"):
        write_image(folder / name, 40, 30, seed=0)
    out = tmp_path / "pred"
    with pytest.raises(ValueError, match=r"\['x.jpg', 'x.png'\] -> overlays/x.png"):
        main(
            [
                *PREDICT,
                f"--data.predict.image_dir={folder}",
                f"--trainer.callbacks.output_dir={out}",
                "--trainer.callbacks.draw_overlays=true",
            ]
        )
    assert not (out / "predictions.npz").exists()


@pytest.mark.parametrize("subcommand", ["fit", "validate"])
def test_empty_validation_split_is_named(tiny_root: Path, subcommand: str) -> None:
    args = [subcommand, *FIT[1:], f"--data.root={tiny_root}", "--data.val_every=100"]
    with pytest.raises(
        DatasetError,
        match=r"the lspet validation split \(0 images; data.val_every=100, data.max_samples=1\) "
        r"has no images; expected at least one \(the lspet annotations have 24 examples\)",
    ):
        main(args)


@pytest.mark.parametrize("subcommand", ["fit", "validate"])
def test_validation_split_without_a_scorable_image_is_named(
    tiny_root: Path, tmp_path: Path, subcommand: str
) -> None:
    mat = tiny_root / "lspet" / "joints.mat"
    joints = scipy.io.loadmat(mat)["joints"]  # (14, 3, 24)
    joints[9, 2, 9::10] = 0  # left shoulder not labelled in the validation images
    scipy.io.savemat(mat, {"joints": joints})
    args = [subcommand, *FIT[1:-1], f"--data.root={tiny_root}", "--data.max_samples=4"]
    if subcommand == "fit":  # a real fit, which Lightning would stop only at its first validation
        args += ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1"]
    with pytest.raises(
        DatasetError,
        match=r"the lspet validation split \(2 images; data.val_every=10, data.max_samples=4\) "
        r"has no image PDJ can score: none has both torso joints \(left_shoulder, right_hip\) "
        "labelled and apart",
    ):
        main(args)
    assert not list(tmp_path.rglob("*.ckpt"))  # no training step was taken


@pytest.fixture(scope="module")
def lspet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint (ModelCheckpoint's, from a one-step fit) of LSPet's 14 joints at 64 px."""
    folder = tmp_path_factory.mktemp("trained")
    write_lspet(folder / "data" / "lspet", 24)
    with contextlib.chdir(folder):
        main(
            [
                *FIT[:-1],
                f"--data.root={folder / 'data'}",
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=1",
                "--trainer.limit_val_batches=1",
            ]
        )
    return sorted(folder.rglob("*.ckpt"))[0]


@pytest.mark.parametrize("subcommand", ["predict", "validate", "test", "fit"])
def test_checkpoint_of_other_joints_is_refused_before_the_run(
    lspet_checkpoint: Path, subcommand: str
) -> None:
    # data.root does not exist: the error comes before the data is touched
    with pytest.raises(
        ValueError,
        match=rf"ckpt_path: {re.escape(str(lspet_checkpoint))} does not fit the config: its "
        r"model estimates the 14 joints of skeleton 'lsp' \(right_ankle, .*\), the config's "
        r"data \(data.dataset\) the 11 of 'flic' \(left_shoulder, .*\); use the dataset config",
    ):
        main(
            [
                subcommand,
                "-c",
                str(REPO / "conf" / "flic.yaml"),
                *PREDICT[3:],
                "--data.root=/nonexistent",
                f"--ckpt_path={lspet_checkpoint}",
            ]
        )


def test_checkpoint_of_another_input_size_is_refused_before_the_run(
    lspet_checkpoint: Path,
) -> None:
    with pytest.raises(
        ValueError,
        match=r"does not fit the config: it was trained on 64 px crops, the config asks for "
        r"data.input_size=220; set --data.input_size=64",
    ):
        main(
            [
                *PREDICT,
                "--data.input_size=220",
                "--data.root=/nonexistent",
                f"--ckpt_path={lspet_checkpoint}",
            ]
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\), expected a Lightning checkpoint"),
        (b"not a checkpoint", r"cannot be read as a checkpoint \(expected a Lightning .ckpt"),
        (None, "has no 'state_dict': not a Lightning checkpoint"),
    ],
    ids=["empty", "text", "no-state-dict"],
)
def test_bad_ckpt_path_gives_a_clear_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.ckpt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"ckpt_path: {re.escape(str(path))} {message}"):
        main([*PREDICT, f"--ckpt_path={path}"])


def test_predict_refuses_a_checkpoint_with_non_finite_weights(
    lspet_checkpoint: Path, tmp_path: Path
) -> None:
    """A diverged fit's checkpoint would give all-NaN predictions."""
    state = torch.load(lspet_checkpoint, map_location="cpu", weights_only=True)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name] = torch.full_like(state["state_dict"][name], float("nan"))
    path = tmp_path / "diverged.ckpt"
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=rf"diverged.ckpt has non-finite weights .*{re.escape(name)}"
    ):
        main([*PREDICT, f"--data.predict.image_dir={tmp_path}", f"--ckpt_path={path}"])
    assert not (tmp_path / "predictions.npz").exists()


def test_predict_refuses_estimates_far_outside_the_image_naming_the_checkpoint(
    lspet_checkpoint: Path, tmp_path: Path
) -> None:
    """Finite weights of a diverged fit (a bias of 1e6): estimates 1e6 box sizes away."""
    state = torch.load(lspet_checkpoint, map_location="cpu", weights_only=True)
    name = [k for k in state["state_dict"] if k.endswith("bias")][-1]
    state["state_dict"][name] = torch.full_like(state["state_dict"][name], 1e6)
    path = tmp_path / "exploded.ckpt"
    torch.save(state, path)
    write_image(tmp_path / "images" / "a.jpg", 64, 48, seed=0)
    with pytest.raises(
        ValueError,
        match=rf"predict: the model of {re.escape(str(path))} estimated 14 of 14 keypoints "
        r"that are not finite \(0\) or lie more than 10 box sizes outside their box",
    ):
        main([*PREDICT, f"--data.predict.image_dir={tmp_path / 'images'}", f"--ckpt_path={path}"])
    assert not list(tmp_path.rglob("predictions*"))


def test_checkpoint_of_another_model_family_is_refused_by_name(lspet_checkpoint: Path) -> None:
    """PyTorch's list of missing and unexpected keys said nothing a person can act on."""
    with pytest.raises(ValueError) as caught:
        main(
            [
                *PREDICT,
                "--model=lightning_pose.models.HeatmapPose",
                "--model.trunk=lightning_pose.models.ResNetTrunk",
                f"--data.root={lspet_checkpoint.parents[4] / 'data'}",
                f"--ckpt_path={lspet_checkpoint}",
            ]
        )
    assert str(caught.value) == (
        f"ckpt_path: {lspet_checkpoint} is a DeepPose model, the config builds HeatmapPose "
        "(model.class_path); give the model config it was trained with (one whose class_path "
        "is DeepPose)"
    )
