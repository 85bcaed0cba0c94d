"""Restructuring keeps what the package computes: a seeded short fit of every model family on
real LSPet images gives the per-step training losses and the final validation metrics recorded in
``tests/same_numbers.json``.

Each model a user can select (every ``conf/model/<name>.yaml``, and each overlay
``conf/model/<name>/<variant>.yaml`` over its base) is fitted for 4 steps of 4 images at 64 px
(AlexNet: its 220) in fp32 on the CPU, one thread, no loader workers, seed 0, with a validation
of the split's first 16 images at the end, through the real CLI and ``conf/lspet.yaml``.

The record is the package's behaviour at the commit that wrote it. A change that is meant to
change what a family computes re-records it, and says so in its commit:

    LIGHTNING_POSE_RECORD_SAME_NUMBERS=1 .venv/bin/python -m pytest tests/test_same_numbers.py

The tolerance (relative 1e-3, absolute 1e-5) covers float sums that differ between CPUs (AVX2
against AVX-512 kernels) over 4 steps; a changed loss, target, initialisation order or metric
moves these numbers by far more.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from lightning_pose.cli import main
from tests.conftest import SHARED_DATA, model_config_stacks, stack_args, stack_id
from tests.test_resume import train_losses

REPO = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("same_numbers.json")
RECORDING = os.environ.get("LIGHTNING_POSE_RECORD_SAME_NUMBERS") == "1"
STACKS = {stack_id(stack): stack for stack in model_config_stacks()}
VAL_KEYS = ("val/loss", "val/pdj@0.2", "val/pckh@0.5", "val/pcp@0.5")
STEPS = 4
INPUT_SIZE = {"deeppose_alexnet": 220}  # its trunk is built for one size; the others take 64


def short_fit(model: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Fit the model stack ``model`` (``deeppose``, ``heatmap_budget+refined``) for ``STEPS``
    steps in ``out``; returns ``{"train_loss": [per step], "val": {key: value}}``."""
    torch.set_num_threads(1)  # one summation order on every machine (the fixture restores it)
    args = [
        "fit",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *stack_args(STACKS[model]),
        f"--data.root={SHARED_DATA}",
        f"--data.input_size={INPUT_SIZE.get(model.split('+')[0], 64)}",
        "--data.batch_size=4",
        "--data.max_samples=16",
        "--data.num_workers=0",
        "--seed_everything=0",
        f"--trainer.max_steps={STEPS}",
        "--trainer.max_epochs=1",
        "--trainer.val_check_interval=1.0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.log_every_n_steps=1",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.precision=32-true",
        "--trainer.enable_progress_bar=false",
    ]
    monkeypatch.chdir(out)
    main(args)
    run = next(out.rglob("metrics.csv")).parent
    losses = train_losses(run)
    val = json.loads((run / "val_metrics.json").read_text())
    return {
        "train_loss": [losses[s] for s in sorted(losses)],
        "val": {k: float(val[k]) for k in VAL_KEYS if k in val},
    }


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


@pytest.mark.skipif(not (SHARED_DATA / "lspet").is_dir(), reason="needs ../shared/data/lspet")
@pytest.mark.parametrize("model", sorted(STACKS))
def test_a_short_seeded_fit_gives_the_recorded_losses_and_metrics(
    model: str, record: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = short_fit(model, tmp_path, monkeypatch)
    assert len(got["train_loss"]) == STEPS, got
    assert all(math.isfinite(v) for v in got["train_loss"]), got
    assert set(got["val"]) >= {"val/loss", "val/pdj@0.2"}, got
    if RECORDING:
        stored = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
        stored[model] = got
        RECORD.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    assert model in record, f"{RECORD.name} has no record of {model}: record it (module docstring)"
    want = record[model]
    assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-3, abs=1e-5), model
    assert set(got["val"]) == set(want["val"]), model
    for key, value in want["val"].items():
        assert got["val"][key] == pytest.approx(value, rel=1e-3, abs=1e-5), (model, key)
