"""The real Trainer under two gloo processes, through the CLI with the dataset config's own
callbacks and loggers: validation counts each image once (an odd number of images, which
Lightning's default sampler would pad by repeating one) and equals the one-process metrics;
rank-zero files are written once; a hang fails the test instead of the suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_lspet
from tests.gloo import requires_gloo

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300
VAL_IMAGES = 5  # LSPet validation = every 10th of 50 images


@pytest.fixture
def lspet50(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_lspet(root / "lspet", 10 * VAL_IMAGES)
    return root


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning_pose", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the launched rank-1 process joins this group
    )
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"{args[:1]} did not finish within {TIMEOUT_S} s (a hang?):\n{out[-3000:]}")
    assert process.returncode == 0, out[-5000:]
    return subprocess.CompletedProcess(args, process.returncode, out, None)


@requires_gloo
def test_validate_under_two_processes_counts_each_image_once(lspet50: Path, tmp_path: Path):
    common = [
        "validate",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        f"--data.root={lspet50}",
        "--data.input_size=64",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.accelerator=cpu",
    ]
    results = {}
    for name, extra in (
        ("one", ["--trainer.devices=1"]),
        ("two", ["--trainer.devices=2", "--trainer.strategy=ddp"]),
    ):
        cwd = tmp_path / name
        cwd.mkdir()
        run_cli([*common, *extra], cwd)
        # rank zero alone wrote the run folder and its tables
        assert sorted(p.name for p in (cwd / "runs" / "lspet").iterdir()) == ["version_0"]
        record = json.loads((cwd / "runs" / "lspet" / "version_0" / "val_metrics.json").read_text())
        results[name] = {k: v for k, v in record.items() if k.startswith("val/")}
    one, two = results["one"], results["two"]
    assert one["val/count/images"] == two["val/count/images"] == VAL_IMAGES
    assert sorted(one) == sorted(two)
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert one["val/count/pdj"] > 0 and "val/pcp@0.5" in one
