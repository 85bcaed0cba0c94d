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
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.csv_logs import _ExperimentWriter as _FabricExperimentWriter
from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only, rank_zero_warn

from lightning_pose.runs.files import write_bytes_atomic

SLURM_JOB_ENV = "SLURM_JOB_ID"
WANDB_RUN_ENV = "WANDB_RUN_ID"  # set by `wandb agent` for each trial it runs
WANDB_RUN_ID_FILE = "wandb_run_id"  # in a run folder: the id of its W&B run


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
            self._experiment = _ResumingWriter(log_dir=self.log_dir)
        return self._experiment


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
        _continue_wandb_run(entries, run)


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
