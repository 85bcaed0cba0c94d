"""The ``lightning-pose`` console script and ``python -m lightning_pose``: the top-level help
lists every subcommand, and each dispatches to its own parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.__main__ import SUBCOMMANDS, TRACEBACK_ENV, run, user_error

REPO = Path(__file__).resolve().parents[1]

SCRIPT = Path(sys.executable).parent / "lightning-pose"
EVERY = (
    "fit", "validate", "test", "predict", "budget", "fit-cascade", "sweep", "export", "convert",
    "report",
)  # fmt: skip


def test_console_script_help_lists_every_subcommand() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: pyproject's [project.scripts] not installed"
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(EVERY) == list(SUBCOMMANDS)


def test_no_subcommand_prints_the_help_and_fails(capsys: pytest.CaptureFixture) -> None:
    assert run([]) == 2
    assert "sweep" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("subcommand", "expected"),
    [
        ("fit", "--trainer"),  # LightningCLI's parser
        ("predict", "--onnx"),
        ("export", "--ckpt_path"),  # lightning_pose.cli.export's parser
        ("budget", "--budget-min"),  # lightning_pose.cli.budget's
        ("fit-cascade", "--depth"),  # lightning_pose.cli.fit_cascade's
        ("convert", "--max-samples"),  # lightning_pose.data.convert's
    ],
)
def test_each_subcommand_has_its_own_help(
    subcommand: str, expected: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run([subcommand, "--help"])
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


# --- bad input: one message, exit 2 --------------------------------------------------------
def run_module(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = os.environ | {"WANDB_MODE": "disabled"} | env
    return subprocess.run(
        [sys.executable, "-m", "lightning_pose", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


MISSING_ROOT = [
    "fit",
    "-c",
    str(REPO / "conf" / "lspet.yaml"),
    "--data.root=/nonexistent/data",
    "--trainer.accelerator=cpu",
]


def test_a_missing_data_root_is_one_message_and_exit_2(tmp_path: Path) -> None:
    done = run_module(MISSING_ROOT, tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    message, hint = done.stderr.strip().splitlines()[-2:]
    assert message.startswith(
        "lightning-pose fit: error: data root /nonexistent/data (from data.root) does not exist"
    )
    assert hint == f"(set {TRACEBACK_ENV}=1 to see where it was raised)"
    # the traceback on request, same status
    traced = run_module(MISSING_ROOT, tmp_path, **{TRACEBACK_ENV: "1"})
    assert traced.returncode == 2
    assert "Traceback (most recent call last)" in traced.stderr
    assert traced.stderr.strip().splitlines()[-2] == message


def test_a_bad_config_value_names_the_key_and_exits_2(tmp_path: Path) -> None:
    done = run_module([*MISSING_ROOT, "--data.batch_size=0"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert 'Parser key "data.batch_size"' in done.stderr


def test_a_bad_checkpoint_in_process_is_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.ckpt").write_text("not a checkpoint")
    args = ["predict", "-c", str(REPO / "conf" / "lspet.yaml"), "--ckpt_path=bad.ckpt"]
    assert run(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2].startswith(
        "lightning-pose predict: error: ckpt_path: bad.ckpt cannot be read as a checkpoint"
    )


def test_an_internal_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError raised inside a library (here NumPy) is not bad input: it propagates."""

    def broken(argv=None):
        np.zeros(3).reshape(2)

    monkeypatch.setattr("lightning_pose.cli.main", broken)
    with pytest.raises(ValueError, match="cannot reshape"):
        run(["fit"])


def test_user_error_tells_the_packages_checks_from_library_errors() -> None:
    from lightning_pose.runtime.checkpoints import read_checkpoint

    with pytest.raises(FileNotFoundError) as ours:
        read_checkpoint("/nonexistent.ckpt")
    with pytest.raises(ValueError) as numpy_error:
        np.zeros(3).reshape(2)
    with pytest.raises(KeyError) as key_error:
        {}["images"]
    assert [user_error(e.value) for e in (ours, numpy_error, key_error)] == [True, False, False]


def test_a_coco_file_without_images_is_one_message_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "train.json").write_text('{"annotations": [], "categories": []}')
    args = [
        "fit",
        "-c",
        str(REPO / "conf" / "coco_mini.yaml"),
        f"--data.root={tmp_path}",
        "--data.dataset.init_args.train_json=mine/train.json",
        "--data.dataset.init_args.val_json=mine/train.json",
        "--data.dataset.init_args.image_dir=mine",
        "--trainer.accelerator=cpu",
    ]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-2] == (
        f"lightning-pose fit: error: {tmp_path / 'mine' / 'train.json'}: missing the list "
        "'images'; expected a COCO keypoint JSON file (images, annotations with bbox and "
        "keypoints K x (x, y, v), categories with keypoints and skeleton)"
    )
