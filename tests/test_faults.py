"""Faults as a cluster user meets them, on a real fit: SIGTERM and Ctrl-C save ``last.ckpt`` at
the step reached and exit non-zero, and the resumed fit ends as an uninterrupted one; a
diverging fit stops with an error naming the step and keeps the last finite ``last.ckpt``
(``predict`` refusing a non-finite checkpoint: ``tests/test_bad_input.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_pose.cli import main
from tests.callbacks.test_checkpoint import every_step_args, every_step_config
from tests.conftest import write_lspet
from tests.test_resume import STEPS, fit_args, train_losses, val_metrics

REPO = Path(__file__).resolve().parents[1]


def run_fit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m lightning_pose`` in a subprocess, with this process's thread count (a fit's
    losses depend on it) and ``tests`` importable (for the fault-probe callbacks)."""
    env = os.environ | {
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "lightning_pose", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def probe(class_path: str, **init_args) -> str:
    return "--trainer.callbacks+=" + json.dumps({"class_path": class_path, "init_args": init_args})


@pytest.mark.parametrize(
    ("signum", "status", "resume"), [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)]
)
def test_a_signal_saves_the_step_reached_exits_non_zero_and_resumes_exactly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: tuple[Path, Path],
    signum: int,
    status: int,
    resume: bool,
) -> None:
    """Both signals take one path to last.ckpt (LatestCheckpoint); SIGTERM's is resumed."""
    root, reference = uninterrupted
    (tmp_path / "stopped").mkdir()

    # the signal arrives during step 4 (0-based), after the validation at step 3 saved last.ckpt
    stopped = run_fit(
        [*fit_args(root), probe("tests.fault_probes.SignalAtStep", step=4, signum=int(signum))],
        tmp_path / "stopped",
    )
    assert stopped.returncode == status, stopped.stderr[-3000:]
    assert f"stopped by {signal.Signals(signum).name} at step 5" in stopped.stderr
    run = tmp_path / "stopped" / "runs" / "lspet" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5
    if not resume:
        return
    monkeypatch.chdir(tmp_path / "stopped")
    cli = main([*fit_args(root), "--ckpt_path", "last"])
    assert Path(cli.trainer.ckpt_path).resolve() == last
    assert cli.trainer.global_step == STEPS
    expected, resumed = train_losses(reference), train_losses(run)
    assert sorted(resumed) == sorted(expected)
    for step in range(5, STEPS):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5), step
    final, reference_final = val_metrics(run), val_metrics(reference)
    for key, value in reference_final.items():
        assert final[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_a_diverging_fit_stops_naming_the_step_and_keeps_the_last_finite_checkpoint(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    # NaN weights from step 4 on: the validation at step 3 saved the last finite state
    done = run_fit(
        [*fit_args(root), probe("tests.fault_probes.PoisonWeightsAtStep", step=4)], tmp_path
    )
    assert done.returncode != 0
    assert "FloatingPointError: non-finite training loss (nan) at step 4" in done.stderr
    run = tmp_path / "runs" / "lspet" / "version_0"
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3
    assert all(v.isfinite().all() for v in state["state_dict"].values() if v.is_floating_point())


def test_a_diverging_fit_keeps_the_last_state_before_its_loss_left_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights that explode without a NaN (a loss of 1e12, finite): last.ckpt, written after
    every step, goes back to the state before them, not the exploded one (predicting 1e6 box
    sizes away) nor a later one."""
    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    config = every_step_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    explode = probe("tests.fault_probes.ExplodeWeightsAtStep", step=2)
    with pytest.warns(
        UserWarning, match=r"the fit diverged at step 2 \(training loss .* > 10000 x"
    ):
        main([*every_step_args(config, root), explode])
    folder = tmp_path / "runs" / "lspet" / "version_0" / "checkpoints"
    state = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 1  # the state before the exploded one (step 2)
    largest = max(
        v.abs().max().item() for v in state["state_dict"].values() if v.is_floating_point()
    )
    assert largest < 1e3
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("last")) == ["last.ckpt"]
