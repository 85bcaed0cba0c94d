"""Result files are written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytorch_lightning as pl


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a temporary file beside ``path`` and rename it into place: a reader never sees a
    half-written file, and a failed write leaves any earlier file untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder a run writes its result files to: the logger's, else the root dir."""
    return Path(trainer.log_dir or trainer.default_root_dir)
