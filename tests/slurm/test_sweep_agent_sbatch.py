"""``slurm/sweep_agent.sbatch`` with a sweep file, submitted from a fresh clone as a SLURM job
array: the offline runner runs one trial of the plan per array task, each in its own folder,
and the results table is written once every trial has finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lightning_pose.reports.tables import read_results
from tests.slurm.cluster import OneNodeSlurm

# one worker runs every test of the one-node cluster (pytest-xdist: one cluster a session)
pytestmark = pytest.mark.xdist_group("slurm")
DROPOUT = "model.init_args.head.init_args.dropout"


def test_sweep_trials_as_a_job_array_each_in_its_own_folder_then_one_table(
    slurm: OneNodeSlurm, clone: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "method": "grid",
                "metric": {"name": "val/pdj@0.2", "goal": "maximize"},
                "parameters": {DROPOUT: {"values": [0.0, 0.2]}},
                "command": [
                    "${env}",
                    "python",
                    "-m",
                    "lightning_pose",
                    "fit",
                    "-c",
                    "conf/lspet.yaml",
                    "${args}",
                ],  # fmt: skip
            }
        )
    )
    out = tmp_path / "out"
    trial_args = [
        "--trainer.accelerator=cpu",
        f"--data.root={clone.parent / 'data'}",
        "--data.input_size=32",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.fast_dev_run=2",
    ]
    env = {"OUTPUT": str(out), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    args = ["--array=1-2", "--gpus=0", "--cpus-per-task=1", "--time=00:10:00"]
    job = slurm.sbatch(
        [*args, "slurm/sweep_agent.sbatch", str(sweep), "--", *trial_args], cwd=clone, env=env
    )
    logs = [clone / "slurm" / "logs" / f"lightning_pose_sweep-{job}_{i}.out" for i in (1, 2)]
    slurm.wait(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 300, logs[0])
    tasks = [slurm.job(f"{job}_{i}") for i in (1, 2)]
    text = "\n".join(log.read_text()[-2000:] for log in logs if log.is_file())
    assert [(t["JobState"], t["ExitCode"]) for t in tasks] == [("COMPLETED", "0:0")] * 2, text

    config, rows = read_results(out)  # written once, by the task that finished last
    assert config["name"] == "tiny"
    assert [(r["trial"], r["status"], r[DROPOUT]) for r in rows] == [
        ("trial_001", "ok", 0.0),
        ("trial_002", "ok", 0.2),
    ]
    for i, log in enumerate(logs, start=1):  # one trial per array task
        assert f"[{i}/2] ok" in log.read_text() and f"[{3 - i}/2]" not in log.read_text()
    for row in rows:
        trial = out / row["trial"]
        # each trial ran in its own array task and wrote under its own folder
        assert Path(row["results"]).is_relative_to(trial)
        assert (Path(row["results"]) / "val_metrics.json").is_file()
        assert json.loads((trial / "row.json").read_text())["status"] == "ok"
        assert 0.0 <= row["val/pdj@0.2"] <= 1.0
    assert sum("all 2 trials done" in log.read_text() for log in logs) >= 1
    assert (out / "results.md").is_file()
