"""Resuming a fit in its own run folder: ``fit ... --ckpt_path last``.

Lightning alone resolves ``--ckpt_path last`` inside the *new* run's folder (``version_{N+1}``,
which has no checkpoint yet), so it starts from scratch with only a warning; and its
``CSVLogger`` deletes ``metrics.csv`` when it opens an existing folder. Here:

* :func:`resolve_resume` (called by the CLI before anything is built) turns ``last`` into the
  newest run folder's ``checkpoints/last.ckpt`` (or Lightning's SLURM requeue checkpoint
  ``hpc_ckpt_*.ckpt`` in ``trainer.default_root_dir``, whichever is newer) and points the
  loggers at that folder, so the resumed fit writes its tables, curves, checkpoints and
  metrics where the run started, and its best-checkpoint bookkeeping is restored. A
  checkpoint path inside a run folder resumes in that folder too. Under SLURM
  (``SLURM_JOB_ID`` set) the run folder is ``slurm_<job id>``, so a requeued job finds its own
  run and never another job's.
* :class:`CSVLogger` keeps the rows of the run it resumes, dropping those from the resumed step
  on (the killed run logged them after its last checkpoint; the resumed run logs them again).
* **One folder per run.** A new run *creates* its folder (:func:`reserve_run_folder`: an
  ``os.mkdir`` that fails where the folder exists, so two runs started together in one working
  folder never share one: ``version_0`` and ``version_1``). Under SLURM the folder is
  ``slurm_<job id>`` (``slurm_<job id>_<W&B run id>`` for a W&B sweep agent's trial, which
  ``wandb agent`` gives ``WANDB_RUN_ID``): a requeued job (``--ckpt_path last``) finds its own
  folder, while a new run in a job whose folder is taken gets ``..._2``, ``..._3`` instead of
  overwriting it.
* **One process per run folder.** A process that writes a run folder holds a lock on
  ``<run>/run.lock`` (:func:`lock_run_folder`: a POSIX record lock, released by the kernel
  when the process ends, even by SIGKILL, so a killed run leaves no stale lock; the file names
  the holder's host and pid). A second ``fit --ckpt_path last`` started while the first still runs
  refuses with :class:`RunFolderInUse` instead of resuming from the same step into the same
  folder.
* **No empty run folders.** A run that fails before it wrote anything (a bad image found when
  the data sets up) removes the folder it created (:meth:`CSVLogger.finalize`).
* ``validate``, ``test`` and ``predict`` of a checkpoint inside a run folder
  (``<run>/checkpoints/<name>.ckpt``) write beside it, in ``<run>/<subcommand>_<name>/``
  (:func:`place_evaluation`), unless the config names the logger's ``version``; they no longer
  open a new ``version_N`` each time.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import itertools
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning_fabric.loggers.csv_logs import _ExperimentWriter as _FabricExperimentWriter
from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only, rank_zero_warn

from lightning_pose.runtime.files import write_bytes_atomic

SLURM_JOB_ENV = "SLURM_JOB_ID"
WANDB_RUN_ENV = "WANDB_RUN_ID"  # set by `wandb agent` for each trial it runs
WANDB_RUN_ID_FILE = "wandb_run_id"  # in a run folder: the id of its W&B run
LOCK_FILE = "run.lock"  # in a run folder: locked (lockf) by the process writing it
EVALUATIONS = ("validate", "test", "predict")
_HELD: dict[Path, int] = {}  # run folders this process holds: their lock file descriptors


class RunFolderInUse(ValueError):
    """Another live process writes this run folder (it holds ``<run>/run.lock``)."""


def lock_run_folder(folder: Path) -> None:
    """Hold ``<folder>/run.lock`` for this process (until :func:`release_run_folder`); a
    folder this process holds already is kept.

    ``fcntl.lockf`` on the file: the kernel drops the lock when the holder ends in any way
    (SIGKILL; a node's reboot ends its NFS lock lease), so a lock is never stale. A POSIX lock
    belongs to the process, not to its forked data-loader workers (an ``flock`` would be
    shared with them and outlive a killed run while its orphaned workers wind down). The
    file's text (host and pid) is only what the message reports.

    Raises:
        RunFolderInUse: another process holds it (names its host and pid).
    """
    folder = Path(folder).resolve()
    if folder in _HELD:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunFolderInUse(
            f"{folder} is in use by {holder} (it holds {path}): another run writes this "
            "folder, and a second one would resume from the same step and overwrite its "
            "checkpoints and tables. Wait for it to end or stop it, then resume with "
            "--ckpt_path last"
        ) from None
    text = f"process {os.getpid()} on {socket.gethostname()}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)
    _HELD[folder] = fd


def release_run_folder(folder: Path) -> None:
    """Let go of the lock :func:`lock_run_folder` took (nothing if not held)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if no file lies anywhere under it (only empty folders, its lock file
    aside); True if removed."""
    if not folder.is_dir():
        return False
    files = [p for p in folder.rglob("*") if not p.is_dir() and p != folder / LOCK_FILE]
    if files:
        return False
    (folder / LOCK_FILE).unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        sub.rmdir()
    folder.rmdir()
    return True


def reserve_run_folder(root: Path, names: Iterator[str]) -> str:
    """Create the first of ``names`` that does not exist under ``root`` and return it.

    ``os.mkdir`` fails on an existing folder, so of two processes trying one name only one
    gets it: a run's folder is never shared. Only the global rank zero creates folders; other
    processes of a DDP run return the first name that does not exist (their folder is
    rank zero's, broadcast by the Trainer).
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        if rank_zero_only.rank != 0:
            if not (root / name).exists():
                return name
            continue
        try:
            (root / name).mkdir()
        except FileExistsError:
            continue
        return name
    raise AssertionError("unreachable: the names are endless")


class _ResumingWriter(ExperimentWriter):
    """``metrics.csv`` writer that appends to an existing file (see :class:`CSVLogger`)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self._trim_pending = self._fs.isfile(self.metrics_file_path)
        if self._trim_pending:
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])

    def _check_log_dir_exists(self) -> None:
        """Lightning's deletes ``metrics.csv`` here; a resumed run keeps it."""

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self._trim_pending and step is not None:
            self._drop_rows_from(step)
        super().log_metrics(metrics_dict, step)

    def _drop_rows_from(self, step: int) -> None:
        self._trim_pending = False
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) < step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        # rewritten whole or not at all: a kill here never loses the earlier rows
        write_bytes_atomic(Path(self.metrics_file_path), text.getvalue().encode())


class CSVLogger(_LightningCSVLogger):
    """Lightning's ``CSVLogger`` (same arguments) that resumes a run's ``metrics.csv``: opened
    in a folder that already has one, it keeps the rows before the first step the resumed run
    logs, instead of deleting the file. Without a ``version`` it creates the next free
    ``version_N`` folder (:func:`reserve_run_folder`), so concurrent runs never share one."""

    def _get_next_version(self) -> int:
        start = super()._get_next_version()
        names = (f"version_{n}" for n in itertools.count(start))
        return int(reserve_run_folder(Path(self.root_dir), names).removeprefix("version_"))

    @property
    @rank_zero_experiment
    def experiment(self) -> _FabricExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            if "://" not in self.log_dir:
                lock_run_folder(Path(self.log_dir))  # before anything is written into it
            self._experiment = _ResumingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """As Lightning's; then, at the end of the run (``success`` or ``failed``), release
        the folder's lock, and remove the folder where the run failed before writing into
        it."""
        super().finalize(status)
        if status not in ("success", "failed") or self._version is None:
            return
        folder = Path(self.log_dir)
        if "://" in self.log_dir:
            return
        release_run_folder(folder)
        if status == "failed" and _remove_if_empty(folder):
            rank_zero_info(f"removed the empty run folder {folder}: the run failed before writing")


def _version_folder(version: int | str) -> str:
    return f"version_{version}" if isinstance(version, int) else str(version)


def _version_of(folder: str) -> int | str:
    match = re.fullmatch(r"version_(\d+)", folder)
    return int(match.group(1)) if match else folder


def _latest_last_checkpoint(root: Path) -> Path | None:
    """``<root>/<run>/checkpoints/last.ckpt`` of the newest run (highest ``version_N``, then
    modification time)."""
    found = [p for p in root.glob("*/checkpoints/last.ckpt") if p.is_file()]

    def order(path: Path) -> tuple[int, float]:
        version = _version_of(path.parents[1].name)
        return (version if isinstance(version, int) else -1, path.stat().st_mtime)

    return max(found, key=order, default=None)


def _hpc_checkpoint(default_root_dir: str | None) -> Path | None:
    """Lightning's newest SLURM requeue checkpoint (``hpc_ckpt_<n>.ckpt``), if any."""
    folder = Path(default_root_dir or ".")
    found = [(int(m.group(1)), p) for p in folder.glob("hpc_ckpt_*.ckpt")
             if (m := re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", p.name))]  # fmt: skip
    return max(found)[1] if found else None


def _logger_entries(trainer: Any) -> list[Any]:
    loggers = trainer.logger
    entries = loggers if isinstance(loggers, list) else [loggers]
    return [e for e in entries if hasattr(e, "get") and e.get("class_path")]


def resolve_resume(config: Any) -> None:
    """Point a ``fit`` config at the run it resumes (in place; see the module docstring).

    ``config``: the parsed ``fit`` namespace (``ckpt_path``, ``trainer.logger``,
    ``trainer.default_root_dir``). The run folder is that of the first ``CSVLogger`` in
    ``trainer.logger`` (``<save_dir>/<name>/<version>``), whose ``version`` is set to the
    resumed run's; checkpoints and result files follow it. A W&B logger continues the run
    folder's W&B run (:func:`_continue_wandb_run`).

    Raises:
        FileNotFoundError: ``--ckpt_path`` names a file that does not exist.
        RunFolderInUse: another live process writes the run folder it would resume.
    """
    entries = _logger_entries(config.trainer)
    csv_entry = next((e for e in entries if str(e.class_path).endswith("CSVLogger")), None)
    if csv_entry is None:
        return
    args = csv_entry.init_args
    root = Path(args.get("save_dir") or ".") / (args.get("name") or "lightning_logs")
    ckpt_path = config.get("ckpt_path")
    slurm_job = os.environ.get(SLURM_JOB_ENV)
    if slurm_job and args.get("version") is None:
        base = f"slurm_{slurm_job}"
        if os.environ.get(WANDB_RUN_ENV):  # a sweep agent's trial: one folder per trial
            base += f"_{os.environ[WANDB_RUN_ENV]}"
        if ckpt_path is None:  # a new run: never another run's folder
            names = itertools.chain([base], (f"{base}_{n}" for n in itertools.count(2)))
            args.version = reserve_run_folder(root, names)
        else:
            args.version = base
    if ckpt_path is None:
        return
    if ckpt_path == "last":
        version = args.get("version")
        if version is not None:
            last = root / _version_folder(version) / "checkpoints" / "last.ckpt"
            last = last if last.is_file() else None
        else:
            last = _latest_last_checkpoint(root)
        hpc = _hpc_checkpoint(config.trainer.get("default_root_dir")) if slurm_job else None
        candidates = [p for p in (last, hpc) if p is not None]
        if not candidates:
            rank_zero_warn(
                f"--ckpt_path last: no run with checkpoints/last.ckpt under {root}"
                + (f" (SLURM job {slurm_job})" if slurm_job else "")
                + ": starting a new run"
            )
            config.ckpt_path = None
            return
        chosen = max(candidates, key=lambda p: p.stat().st_mtime)
        config.ckpt_path = str(chosen)
        rank_zero_info(f"--ckpt_path last: resuming from {chosen}")
        if chosen != last:  # the hpc checkpoint: its run folder is the SLURM one, already set
            _lock_resumed(root / _version_folder(args.version))
            _continue_wandb_run(entries, root / _version_folder(args.version))
            return
        ckpt = chosen
    else:
        ckpt = Path(ckpt_path)
        if not ckpt.is_file():
            raise FileNotFoundError(f"--ckpt_path: {ckpt} does not exist")
    run = ckpt.resolve().parents[1]
    if ckpt.resolve().parent.name == "checkpoints" and run.parent == root.resolve():
        args.version = _version_of(run.name)
        _lock_resumed(run)
        _continue_wandb_run(entries, run)


def _lock_resumed(run: Path) -> None:
    """The run folder a fit resumes into is locked before anything is built (by the global
    rank zero; a DDP run's other processes write no run folder)."""
    if rank_zero_only.rank == 0:
        lock_run_folder(run)


def place_evaluation(config: Any, subcommand: str) -> None:
    """Point a ``validate``/``test``/``predict`` config beside the run of its checkpoint (in
    place; see the module docstring).

    ``config``: the parsed namespace of ``subcommand`` (``ckpt_path``, ``trainer.logger``,
    ``trainer.callbacks``). A checkpoint ``<run>/checkpoints/<name>.ckpt`` puts the first
    ``CSVLogger``'s folder at ``<run>/<subcommand>_<name>`` (where the config gives it no
    ``version``). The monitored ``ModelCheckpoint`` callbacks are dropped: an evaluation saves
    no checkpoint, and restoring their record from the checkpoint only warned that their
    folder had changed. :class:`~lightning_pose.callbacks.LatestCheckpoint` stays (it tells a
    stop signal's outcome) and takes no record outside ``fit``.
    """
    if subcommand not in EVALUATIONS:
        return
    callbacks = config.trainer.get("callbacks")
    if isinstance(callbacks, list):
        config.trainer.callbacks = [
            c
            for c in callbacks
            if not (
                isinstance(c, Namespace)
                and str(c.get("class_path")).endswith(".callbacks.ModelCheckpoint")
            )
        ]
    ckpt = config.get("ckpt_path")
    path = Path(ckpt) if ckpt else None
    if path is None or not path.is_file() or path.resolve().parent.name != "checkpoints":
        return
    entries = _logger_entries(config.trainer)
    csv_entry = next((e for e in entries if str(e.class_path).endswith("CSVLogger")), None)
    if csv_entry is None or csv_entry.init_args.get("version") is not None:
        return
    run = path.resolve().parents[1]
    csv_entry.init_args.save_dir = str(run)
    csv_entry.init_args.name = ""
    csv_entry.init_args.version = f"{subcommand}_{path.stem}"
    rank_zero_info(f"{subcommand}: writing to {run / csv_entry.init_args.version}")


def _continue_wandb_run(entries: list[Any], run: Path) -> None:
    """A resumed fit logs into the W&B run of the run folder it continues: its id, which
    :class:`lightning_pose.callbacks.wandb_panels.WandbSaveConfigCallback` keeps in
    ``<run>/wandb_run_id``, becomes the ``WandbLogger``'s ``version`` (Lightning passes it to
    ``wandb.init`` with ``resume="allow"``), online and offline (``wandb sync`` then uploads the
    offline parts into one run). ``WANDB_RUN_ID``, where set (a sweep agent), wins."""
    id_file = run / WANDB_RUN_ID_FILE
    if not id_file.is_file() or os.environ.get(WANDB_RUN_ENV):
        return
    run_id = id_file.read_text().strip()
    for entry in entries:
        if str(entry.class_path).endswith("WandbLogger") and entry.init_args.get("id") is None:
            entry.init_args.version = run_id
            rank_zero_info(f"--ckpt_path: continuing W&B run {run_id}")
