"""``lightning-pose report``: its help lists every kind, an unknown kind is refused, and each
kind dispatches to its own module's parser (the reports themselves: ``tests/reports/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_pose.__main__ import run
from lightning_pose.cli.report import KINDS


def test_report_lists_its_kinds_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture,
) -> None:
    assert run(["report", "--help"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line[:2] == "  "]
    assert listed == list(KINDS)
    assert run(["report"]) == 2
    assert "expected one of intervals, compare" in capsys.readouterr().err
    assert run(["report", "pck"]) == 2
    assert "unknown kind 'pck'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("intervals", "--baseline"),
        ("compare", "summary"),
        ("errors", "--ckpt"),
        ("protocol-counts", "root"),
        ("mean-pose", "root"),
    ],
)
def test_each_report_has_its_own_help(
    kind: str, expected: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["report", kind, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lightning-pose report {kind}") and expected in out


def test_a_missing_file_is_one_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run(["report", "compare", str(tmp_path / "summary.tsv")]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-2]
    assert message.startswith(f"lightning-pose report: error: {tmp_path / 'summary.tsv'}: no such")
