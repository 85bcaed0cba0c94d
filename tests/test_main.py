"""The ``lightning-pose`` console script and ``python -m lightning_pose``: the top-level help
lists every subcommand, and each dispatches to its own parser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lightning_pose.__main__ import SUBCOMMANDS, run

SCRIPT = Path(sys.executable).parent / "lightning-pose"
EVERY = ("fit", "validate", "test", "predict", "sweep", "export", "train")


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
        ("train", "--budget-min"),  # lightning_pose.cli.train's
    ],
)
def test_each_subcommand_has_its_own_help(
    subcommand: str, expected: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run([subcommand, "--help"])
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out
