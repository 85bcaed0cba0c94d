"""``atomic_open``: a target is replaced whole or left as it was (a failed write, a full disk),
never truncated, and no temporary file is left behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from lightning_pose.runtime.files import atomic_open, write_bytes_atomic


def test_replaces_the_target_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.md"
    write_bytes_atomic(target, b"old")
    write_bytes_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]


def test_a_full_disk_mid_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "best.ckpt"
    target.write_bytes(b"x" * 1000)
    with pytest.raises(OSError, match="No space left"), atomic_open(target) as f:
        f.write(b"y" * 500)  # half of the new file is on disk
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"x" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]


def test_a_failed_first_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "best-000.ckpt"
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_is_in_the_targets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never in the system temp folder (which may be another filesystem)."""
    elsewhere = tmp_path / "system_tmp"
    elsewhere.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(elsewhere))
    target = tmp_path / "out" / "last.ckpt"
    with atomic_open(target) as f:
        seen = [p.parent for p in target.parent.glob(".last.ckpt.*.tmp")]
        f.write(b"data")
    assert seen == [target.parent]
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_written_file_has_the_mode_open_would_give_it(tmp_path: Path, umask: int) -> None:
    """0o666 less the umask (mkstemp alone would leave 0o600: results hidden from the group)."""
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "table.csv", b"x")
        with open(tmp_path / "plain.csv", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "table.csv").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain.csv").stat().st_mode)
