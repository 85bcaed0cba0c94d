"""Files are written whole or not at all.

Every file the package writes (checkpoints, tables, curves, predictions) goes through
:func:`atomic_open`: a temporary file in the *target's own folder*, flushed to disk, then
``os.replace``d onto the target. A rename within one folder is atomic on POSIX filesystems
(local, NFS, Lustre), so a reader, a kill (SIGKILL included) or a full disk never leaves a
truncated file: the target holds either its old content or the new one. A temporary file in
the system temp folder (what an fsspec transaction uses) is *not* enough: where it lies on
another filesystem (a tmpfs ``/tmp``, a project on NFS) the "move" is a copy into the existing
target, which truncates it first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytorch_lightning as pl


def _process_umask() -> int:
    """The process's umask (read without changing it where ``/proc`` tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: ``0o666`` less the umask (``mkstemp``
    would leave ``0o600``, hiding results from the group a cluster project shares)."""
    return 0o666 & ~_process_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file object to write ``path`` through, atomically (see the module docstring).

    On a clean exit the data are flushed and fsynced and the temporary file (``.<name>.*.tmp``
    beside ``path``) replaces ``path``; on any exception (``OSError`` for a full disk,
    ``KeyboardInterrupt``) the temporary file is removed, ``path`` is left as it was, and the
    exception propagates. Creates ``path``'s folder. The file gets the mode a plain
    ``open()`` would give it (``0o666`` less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())  # as a plain open() would create it
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of :func:`atomic_open` in ``folder`` (``.<name>.*.tmp``):
    left by a process killed while it saved (each as large as the file it was writing). Call it
    only where no other process is writing into ``folder`` (a run's own folders, when the run
    starts). Returns the files removed."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_open`: a reader never sees a
    half-written file, and a failed write leaves any earlier file untouched."""
    with atomic_open(path) as f:
        f.write(data)


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder a run writes its result files to: the logger's, else the root dir."""
    return Path(trainer.log_dir or trainer.default_root_dir)
