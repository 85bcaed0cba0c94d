"""The id ``scontrol requeue`` is given (``lightning_pose.runtime.slurm``); the requeue itself runs
on a one-node SLURM in ``tests/slurm/test_fit_sbatch.py``."""

from __future__ import annotations

import pytest

from lightning_pose.runtime.slurm import requeue_job, slurm_job_id


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_JOB_ID": "12"}, "12"),
        # an array task: its own job id is not what the array's requeue takes
        ({"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "2"}, "10_2"),
        ({"SLURM_JOB_ID": "12; rm -rf /"}, None),
        ({}, None),
    ],
)
def test_the_job_id_to_requeue(env, expected, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert slurm_job_id() == expected


def test_outside_a_job_nothing_is_requeued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    assert requeue_job() == (False, "not requeued: no SLURM_JOB_ID (not inside a SLURM job)")
