"""SLURM's warning before a time limit (``#SBATCH --signal=SIGUSR1@90``): requeue the job from a
training-step boundary.

Lightning's SLURM environment (``SLURMEnvironment(auto_requeue=True)``, its default) handles
the signal *inside the signal handler*: it saves ``hpc_ckpt_<n>.ckpt`` (a save with barriers)
and runs ``scontrol requeue``. Under DDP the processes can be anywhere when the signal
arrives; with one process in a validation and the other waiting in the validation's reduction,
the job hung after writing ``hpc_ckpt_1.ckpt``: no requeue, the work lost at the time limit
(``tests/slurm/test_fit_sbatch.py`` on a one-node SLURM). Here
:class:`lightning_pose.callbacks.LatestCheckpoint` takes the signal over
(:func:`take_over_requeue`): its handler only records it, every process acts on it at the end
of the same training step, saves ``last.ckpt`` there, rank zero requeues the job
(:func:`requeue_job`) and the fit stops; the requeued job's ``--ckpt_path last`` resumes.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment


def take_over_requeue(trainer: pl.Trainer) -> int | None:
    """The signal on which Lightning would requeue this SLURM job, its own handler switched off
    (call before Lightning registers its handlers, e.g. in ``on_fit_start``); None where it
    would not requeue (not under SLURM, or ``SLURMEnvironment(auto_requeue=False)``)."""
    environment = trainer._accelerator_connector.cluster_environment
    if not isinstance(environment, SLURMEnvironment) or not environment.auto_requeue:
        return None
    environment.auto_requeue = False  # Lightning then registers no handler for the signal
    return int(environment.requeue_signal)


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` in a job array, else the job's
    (as Lightning's handler), from SLURM's environment variables; None outside a job."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


def requeue_job(timeout_s: float = 60.0) -> tuple[bool, str]:
    """``scontrol requeue <this job>``: (whether SLURM accepted it, a sentence saying what
    happened). SLURM then stops the running job (SIGTERM, then SIGKILL after its ``KillWait``)
    and starts it again under the same id once its requeue delay has passed."""
    job = slurm_job_id()
    if job is None:
        return False, "not requeued: no SLURM_JOB_ID (not inside a SLURM job)"
    command = ["scontrol", "requeue", job]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"`{' '.join(command)}` failed: {error}"
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip()
        return False, f"`{' '.join(command)}` failed (exit {result.returncode}): {why}"
    return True, f"requeued SLURM job {job}"
