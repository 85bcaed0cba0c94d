"""A fit killed mid-epoch (SIGKILL) and resumed with ``--ckpt_path last`` continues in its own
run folder from the step of its last checkpoint, and ends where an uninterrupted run with the
same seed ends: same per-step training losses, same final validation metrics."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_pose.cli import main

REPO = Path(__file__).resolve().parents[1]
STEPS = 12  # 2 epochs of 6 batches (27 training images, batch 4); validation every 3 steps


def fit_args(root: Path) -> list[str]:
    return [
        "fit",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        f"--data.root={root}",
        "--data.input_size=32",
        "--data.batch_size=4",
        "--data.num_workers=1",  # a worker: its start must not shift training's randomness
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.max_epochs=2",
        "--trainer.max_steps=12",
        # the schedule takes its length from the trainer (and resumes at its step)
        "--model.scheduler=lightning_pose.models.schedules.WarmupCosineLR",
        "--model.scheduler.warmup_steps=2",
        "--trainer.val_check_interval=3",
        "--trainer.log_every_n_steps=1",
        "--seed_everything=0",
    ]


def train_losses(run: Path) -> dict[int, float]:
    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    steps = [int(r["step"]) for r in rows]
    assert len(steps) == len(set(steps)), f"a step logged twice: {sorted(steps)}"
    return {int(r["step"]): float(r["train/loss"]) for r in rows}


def val_metrics(run: Path) -> dict[str, float]:
    record = json.loads((run / "val_metrics.json").read_text())
    assert record["step"] == STEPS
    return {k: v for k, v in record.items() if k.startswith("val/")}


def kill_after_first_checkpoint(args: list[str], cwd: Path) -> int:
    """Run ``fit`` in a subprocess, SIGKILL it once ``last.ckpt`` exists; its global step."""
    # the same intra-op threads as this process: a fit's losses depend on the thread count
    env = os.environ | {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning_pose", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = cwd / "runs" / "lspet" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists():
        if process.poll() is not None:
            pytest.fail(f"fit ended before its first checkpoint:\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no last.ckpt within 240 s")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return torch.load(last, map_location="cpu", weights_only=True)["global_step"]


def test_killed_mid_epoch_then_resumed_ends_as_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: tuple[Path, Path]
) -> None:
    root, reference = uninterrupted
    (tmp_path / "killed").mkdir()

    killed_at = kill_after_first_checkpoint(fit_args(root), tmp_path / "killed")
    assert 0 < killed_at < STEPS // 2  # mid-epoch: the first epoch has 6 steps
    monkeypatch.chdir(tmp_path / "killed")
    with pytest.warns() as caught:
        cli = main([*fit_args(root), "--ckpt_path", "last"])
    assert not [w for w in caught if "not resumable" in str(w.message)]
    run = tmp_path / "killed" / "runs" / "lspet" / "version_0"
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # resumed in place
    assert Path(cli.trainer.ckpt_path).resolve() == run / "checkpoints" / "last.ckpt"
    assert cli.trainer.global_step == STEPS

    # the resumed run trained the steps after its checkpoint, exactly as the uninterrupted run
    expected, resumed = train_losses(reference), train_losses(run)
    assert sorted(resumed) == sorted(expected) and len(expected) == STEPS
    for step in range(killed_at, STEPS):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5), step
    final, reference_final = val_metrics(run), val_metrics(reference)
    assert sorted(final) == sorted(reference_final)
    for key, value in reference_final.items():
        assert final[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STEPS
