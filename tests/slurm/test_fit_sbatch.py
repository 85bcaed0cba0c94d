"""``slurm/fit.sbatch`` submitted from a fresh clone to a one-node SLURM, as a two-task DDP job
on the CPU with tiny overrides: it runs; a time-limit signal (SIGUSR1, sent with ``scancel
--signal``) during a validation and during training requeues it, and the requeued job resumes
and ends with an uninterrupted job's per-step losses and final metrics; ``scancel`` (SIGTERM)
saves and ends it with the exit status of a SIGTERM outside SLURM (143)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

from lightning_pose.callbacks.checkpoint import exit_status
from tests.slurm.cluster import OneNodeSlurm, wait_for_file
from tests.test_resume import train_losses

# one worker runs every test of the one-node cluster (pytest-xdist: one cluster a session)
pytestmark = pytest.mark.xdist_group("slurm")
STEPS = 9  # 3 epochs x 3 batches of 4 per process (27 training images over 2 processes)
SBATCH = [
    "--gpus-per-node=0",
    "--ntasks-per-node=2",
    "--cpus-per-task=1",
    "--time=00:15:00",
]
# the same thread count in every job: a fit's floating-point sums depend on it
ENV = {"CONFIGS": "-c conf/lspet.yaml", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
JOB_TIMEOUT_S = 300


def fit_overrides(data: Path) -> list[str]:
    return [
        "--trainer.accelerator=cpu",
        f"--data.root={data}",
        "--data.input_size=32",
        "--data.batch_size=4",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--model.scheduler=lightning_pose.models.schedules.WarmupCosineLR",
        "--model.scheduler.warmup_steps=2",
        "--trainer.max_epochs=3",
        f"--trainer.max_steps={STEPS}",
        "--trainer.val_check_interval=2",
        "--trainer.log_every_n_steps=1",
        "--seed_everything=0",
    ]


def pause_overrides(folder: Path, **steps: int) -> list[str]:
    """Add ``tests.slurm.probes.PauseForSignal`` (rank 0) to the config's callbacks."""
    args = ["--trainer.callbacks+=tests.slurm.probes.PauseForSignal"]
    args.append(f"--trainer.callbacks.folder={folder}")
    return args + [f"--trainer.callbacks.{key}={value}" for key, value in steps.items()]


def submit(slurm: OneNodeSlurm, clone: Path, extra: list[str] = ()) -> tuple[str, Path]:
    """``sbatch slurm/fit.sbatch`` from the clone; (job id, its log)."""
    args = [*SBATCH, "slurm/fit.sbatch", *fit_overrides(clone.parent / "data"), *extra]
    job = slurm.sbatch(args, cwd=clone, env=ENV)
    return job, clone / "slurm" / "logs" / f"lightning_pose-{job}.out"


def run_folder(clone: Path, job: str) -> Path:
    return clone / "runs" / "lspet" / f"slurm_{job}"


def val_metrics(run: Path) -> dict[str, float]:
    record = json.loads((run / "val_metrics.json").read_text())
    assert record["step"] == STEPS - 1  # the last validation: after steps 2, 5 and 8
    return {k: v for k, v in record.items() if k.startswith("val/")}


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def signal_when_paused(
    slurm: OneNodeSlurm,
    job: str,
    log: Path,
    folder: Path,
    where: str,
    step: int,
    signal_name: str | None,
) -> None:
    """Wait for the probe's pause, let the other process reach its collective, send ``signal``
    to the job's tasks (None: ``scancel`` the job), then release the pause (the probe's
    ``folder``)."""
    wait_for_file(folder / f"paused-{where}-{step}", JOB_TIMEOUT_S, f"job {job}", log)
    time.sleep(2)
    slurm.run("scancel", *([f"--signal={signal_name}"] if signal_name else []), job)
    time.sleep(1)
    (folder / f"release-{where}-{step}").touch()


@pytest.fixture(scope="module")
def uninterrupted(slurm: OneNodeSlurm, clone: Path) -> tuple[str, dict[str, str], Path]:
    """The job submitted from the fresh clone, run to its end: (job id, its fields, log)."""
    job, log = submit(slurm, clone)
    fields = slurm.wait(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), JOB_TIMEOUT_S, log)
    return job, fields, log


def test_a_fresh_clone_submits_fit_sbatch_and_the_job_runs(uninterrupted, clone: Path) -> None:
    """Before: ``--output=runs/slurm/...`` named a folder that a fresh clone does not have;
    SLURM could not open the log and the job died before it started."""
    job, fields, log = uninterrupted
    assert log.is_file(), f"no job log {log}"
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), log.read_text()[-3000:]
    run = run_folder(clone, job)
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == STEPS
    assert sorted(train_losses(run)) == list(range(STEPS))  # both processes, one row a step


def test_time_limit_signal_in_validation_and_in_training_requeues_and_resumes_exactly(
    slurm: OneNodeSlurm, clone: Path, uninterrupted, tmp_path: Path
) -> None:
    """SIGUSR1 (``#SBATCH --signal=SIGUSR1@90``) first while rank 1 is in a validation and rank
    0 waits in the validation's reduction, then (in the requeued job) while rank 1 starts a
    training step and rank 0 waits in the step's first collective. Each time the job saves, is
    requeued and resumes from its run's newest checkpoint; it ends as the uninterrupted job.
    Before (Lightning's handler, which saves with barriers inside the signal handler): the
    job hung in the training case, 3 of 3 tries (no requeue; the test fails at its 120 s
    wait); the validation case was requeued in 5 of 5 tries."""
    reference_job, _, _ = uninterrupted
    probe = pause_overrides(tmp_path, validation_step=2, training_step=6, rank=1)
    job, log = submit(slurm, clone, probe)
    run = run_folder(clone, job)
    last = run / "checkpoints" / "last.ckpt"

    for restart, (where, step, saved) in enumerate(
        [("validation", 2, 3), ("training", 6, 7)], start=1
    ):
        signal_when_paused(slurm, job, log, tmp_path, where, step, "USR1")
        fields = slurm.wait(job, ("PENDING", "COMPLETED", "FAILED"), 120, log)
        assert (fields["JobState"], fields["Restarts"]) == ("PENDING", str(restart)), (
            f"SIGUSR1 in {where}: not requeued\n{log.read_text()[-3000:]}"
        )
        assert checkpoint_step(last) == saved, f"SIGUSR1 in {where}"
        slurm.start_now(job)
    fields = slurm.wait(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), JOB_TIMEOUT_S, log)
    text = log.read_text()
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), text[-3000:]
    resumed_from = f"--ckpt_path last: resuming from {last.relative_to(clone)}"
    assert text.count(resumed_from) == 2, text[-3000:]
    assert not list(run.parent.glob(f"slurm_{job}_*"))  # resumed in its own folder each time

    reference = run_folder(clone, reference_job)
    expected, resumed = train_losses(reference), train_losses(run)
    assert sorted(resumed) == sorted(expected) == list(range(STEPS))
    for step in range(STEPS):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5), step
    final, reference_final = val_metrics(run), val_metrics(reference)
    assert sorted(final) == sorted(reference_final)
    for key, value in reference_final.items():
        assert final[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert checkpoint_step(last) == STEPS


def test_scancel_saves_and_ends_the_job_with_the_exit_status_of_a_sigterm(
    slurm: OneNodeSlurm, clone: Path, tmp_path: Path
) -> None:
    """``scancel`` while rank 0 starts training step 3: the step completes on both processes,
    ``last.ckpt`` holds step 4, and the job ends with 143 (128 + SIGTERM), the status
    ``python -m lightning_pose fit`` exits with on a SIGTERM outside SLURM
    (``tests/test_faults.py``)."""
    probe = pause_overrides(tmp_path, training_step=3)
    job, log = submit(slurm, clone, probe)
    signal_when_paused(slurm, job, log, tmp_path, "training", 3, None)
    fields = slurm.wait(job, ("CANCELLED", "COMPLETED", "FAILED"), 120, log)
    text = log.read_text()
    last = run_folder(clone, job) / "checkpoints" / "last.ckpt"
    assert checkpoint_step(last) == 4, text[-3000:]
    assert text.count("stopped by SIGTERM at step 4") == 1, text[-3000:]  # rank zero's line
    assert fields["JobState"] == "CANCELLED"
    assert fields["ExitCode"] == f"{exit_status(signal.SIGTERM)}:0", text[-3000:]
