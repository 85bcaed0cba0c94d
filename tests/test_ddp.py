"""The real Trainer under two gloo processes, through the CLI with the dataset config's own
callbacks and loggers: validation counts each image once (an odd number of images, which
Lightning's default sampler would pad by repeating one) and equals the one-process metrics;
rank-zero files are written once; a hang fails the test instead of the suite."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_pose.cli import main
from tests.conftest import model_config_stacks, stack_args, stack_id, write_lspet
from tests.gloo import requires_gloo

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # a CLI run under two processes: start-up, import, fit; room for a busy machine
VAL_IMAGES = 5  # LSPet validation = every 10th of 50 images


@pytest.fixture
def lspet50(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_lspet(root / "lspet", 10 * VAL_IMAGES)
    return root


def run_cli(
    args: list[str], cwd: Path, wandb_mode: str = "disabled", returncode: int = 0
) -> subprocess.CompletedProcess:
    """``python -m lightning_pose *args`` in ``cwd`` (``tests`` importable, for the fault
    probes), its output; fails the test past ``TIMEOUT_S`` or on another exit status."""
    env = os.environ | {"WANDB_MODE": wandb_mode, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
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
    assert process.returncode == returncode, out[-5000:]
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
        "--trainer.callbacks+=lightning_pose.callbacks.PerImageScoresWriter",
    ]
    results, per_image = {}, {}
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
        with open(cwd / "runs" / "lspet" / "version_0" / "per_image_val.csv", newline="") as f:
            per_image[name] = list(csv.DictReader(f))
    # every image once, in dataset order, equal under two processes; the logged value is the
    # count-weighted mean of its per-image column
    for row_one, row_two in zip(per_image["one"], per_image["two"], strict=True):
        assert row_one.keys() == row_two.keys()
        for key, value in row_one.items():
            if value == "" or key == "index" or key.startswith("count/"):
                assert row_two[key] == value, key
            else:  # the same image in another batch: the network's floats may differ
                assert float(row_two[key]) == pytest.approx(float(value), rel=1e-6, abs=1e-9)
    assert [int(r["index"]) for r in per_image["one"]] == sorted(
        {int(r["index"]) for r in per_image["one"]}
    )
    assert len(per_image["one"]) == VAL_IMAGES
    for key, count in (("pdj@0.2", "pdj"), ("pcp@0.5", "pcp"), ("mean_error_px", "mean_error_px")):
        rows = [r for r in per_image["one"] if r[key] != ""]
        weights = [float(r[f"count/{count}"]) for r in rows]
        pooled = sum(float(r[key]) * w for r, w in zip(rows, weights, strict=True)) / sum(weights)
        assert pooled == pytest.approx(results["one"][f"val/{key}"], rel=1e-6, abs=1e-9), key
    one, two = results["one"], results["two"]
    assert one["val/count/images"] == two["val/count/images"] == VAL_IMAGES
    assert sorted(one) == sorted(two)
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert one["val/count/pdj"] > 0 and "val/pcp@0.5" in one


MODEL_CONFIGS = model_config_stacks()
TWO_PROCESSES = [
    "--trainer.accelerator=cpu",
    "--trainer.strategy=ddp",
    "--trainer.devices=2",
    "--data.batch_size=2",
    "--data.num_workers=0",
]


def assert_no_sync_dist_warning(output: str) -> None:
    """Evaluation metrics are reduced by torchmetrics and logged as numbers: no warning."""
    assert "sync_dist" not in output, output[output.index("sync_dist") - 300 :][:600]


@requires_gloo
@pytest.mark.parametrize("stack", MODEL_CONFIGS, ids=stack_id)
def test_fit_each_variant_under_two_processes(
    stack: tuple[Path, ...], lspet50: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The README's multi-GPU command, on the CPU: every model config (and overlay) trains
    two steps and validates under two gloo processes with the dataset config's callbacks, and
    does not hang. Its logged validation equals one process validating the checkpoint it
    saved (in-process, the same 5 images, fp32 in both): the two ranks held the same weights
    (DDP averaged the gradients into one model), every image counted once, every metric
    reduced across the ranks. Tolerance rel 1e-5: an image lands in another batch (the
    network's floats may differ by ~1e-7); two ranks that drifted apart, a lost shard or a
    doubled one move the metrics by far more (e.g. PDJ@0.2 by 1/68, one joint)."""
    args = ["-c", str(REPO / "conf" / "lspet.yaml"), *stack_args(stack), f"--data.root={lspet50}"]
    if "input_size" not in stack[0].read_text():
        args.append("--data.input_size=64")
    two = tmp_path / "two"
    two.mkdir()
    fit = ["--trainer.max_steps=2", "--trainer.val_check_interval=2"]
    # fp32 in both runs: a budget config's `precision: auto` trains in bf16 where the CPU has
    # it, and evaluates in bf16 inside the fit but in fp32 in `validate`
    fit += ["--trainer.num_sanity_val_steps=0", "--trainer.precision=32-true"]
    out = run_cli(["fit", *args, *fit, *TWO_PROCESSES], two).stdout
    assert_no_sync_dist_warning(out)
    # rank zero alone wrote the run folder and its table, once
    run = two / "runs" / "lspet" / "version_0"
    assert sorted(p.name for p in (two / "runs" / "lspet").iterdir()) == ["version_0"]
    record = json.loads((run / "val_metrics.json").read_text())
    assert record["step"] == 2 and record["val/count/images"] == VAL_IMAGES
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2

    one = tmp_path / "one"
    one.mkdir()
    monkeypatch.chdir(one)
    one_process = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--data.batch_size=2"]
    one_process += ["--trainer.precision=32-true"]
    cli = main(["validate", *args, *one_process, "--data.num_workers=0", f"--ckpt_path={last}"])
    metrics = cli.trainer.callback_metrics
    expected = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}
    logged = {k: v for k, v in record.items() if k.startswith("val/")}
    assert sorted(logged) == sorted(expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@requires_gloo
def test_rank_zero_alone_writes_run_folder_checkpoints_and_wandb_run(lspet50: Path, tmp_path):
    """A short real fit under two processes (W&B offline): one run folder, one W&B run, one
    last.ckpt at the final step, and validation counted each of the 5 images once."""
    args = ["fit", "-c", str(REPO / "conf" / "lspet.yaml"), f"--data.root={lspet50}"]
    args += [
        *TWO_PROCESSES,
        "--data.input_size=64",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]
    args += ["--trainer.max_steps=3", "--trainer.val_check_interval=2"]
    out = run_cli(args, tmp_path, wandb_mode="offline").stdout
    assert_no_sync_dist_warning(out)
    runs = tmp_path / "runs"
    assert sorted(p.name for p in (runs / "lspet").iterdir()) == ["version_0"]
    assert len(list((runs / "wandb").glob("offline-run-*"))) == 1
    run = runs / "lspet" / "version_0"
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 3
    record = json.loads((run / "val_metrics.json").read_text())
    assert record["val/count/images"] == VAL_IMAGES and record["step"] == 2  # last validation


@requires_gloo
@pytest.mark.parametrize("rank", [None, 1], ids=["every rank", "rank 1 alone"])
def test_sigterm_under_two_processes_saves_the_step_reached_and_exits_143(
    lspet50: Path, tmp_path: Path, rank: int | None
) -> None:
    """SLURM signals every task; a `kill` reaches one (here rank 1, which Lightning's own
    broadcast from rank 0 never heard). Either way: no hang, every process stops after the
    same step, last.ckpt holds it, exit 143. Before: a collective inside Lightning's signal
    handler crashed the fit (gloo::EnforceNotMet, exit 1)."""
    from tests.test_faults import probe

    args = [
        "fit",
        "-c", str(REPO / "conf" / "lspet.yaml"),
        f"--data.root={lspet50}", "--data.input_size=32", "--data.batch_size=2",
        "--data.num_workers=0", "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
        "--trainer.max_steps=40", "--trainer.val_check_interval=3",
        probe("tests.fault_probes.SignalAtStep", step=4, rank=rank),
    ]  # fmt: skip
    out = run_cli(args, tmp_path, returncode=143).stdout
    last = tmp_path / "runs" / "lspet" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 5, out[-3000:]  # the signal came during step 4 (0-based)
    assert "stopped by SIGTERM at step 5" in out
