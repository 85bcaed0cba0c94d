"""bench/throughput.py with both data paths (``--augment-on cpu device``) and a fixed number of
timed steps (``--steps``): the timer stops after the steps asked, and a tiny run writes a row per
path with the rates it measured."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.bench import load
from tests.conftest import write_lspet

throughput = load("throughput")


def test_step_timer_stops_after_the_steps_asked_not_the_seconds() -> None:
    class Trainer:
        global_step, should_stop = 0, False

    trainer, timer = Trainer(), throughput.StepTimer(warmup=1, seconds=1e9, steps=3)
    batch = {"image": torch.zeros(2, 3, 4, 4)}
    for step in range(10):
        trainer.global_step = step
        timer.on_train_batch_start(trainer, None, batch, step)
        timer.on_train_batch_end(trainer, None, None, batch, step)
        if trainer.should_stop:
            break
    assert step == 3 and timer.timed_steps == 3 and timer.images == 6


def test_both_data_paths_are_measured_for_the_budget_recipe(tmp_path: Path) -> None:
    """The budget recipe at 32 px on 20 generated LSPet images, 2 timed steps a measurement."""
    write_lspet(tmp_path / "lspet", 20)
    out = tmp_path / "throughput.md"
    rows = throughput.main([
        "--variants", "heatmap_budget", "--steps", "2", "--warmup", "1", "--repeats", "1",
        "--threads", "1", "--augment-on", "cpu", "device", "--data-root", str(tmp_path),
        "--output", str(out), "--", "--data.input_size=32", "--data.batch_size=4",
        "--data.num_workers=0", "--trainer.precision=32-true",
    ])  # fmt: skip
    assert [r["augment_on"] for r in rows] == ["cpu", "device"]
    for row in rows:
        assert len(row["pipeline"]) == 1 and row["pipeline"][0] > 0 and row["model"][0] > 0
        assert row["cache"] and (row["input"], row["batch"]) == (32, 4)
    assert rows[0]["model"] == rows[1]["model"]  # the model alone, measured once
    text = out.read_text()
    assert "images/s over 2 optimiser steps after 1 untimed steps" in text
    assert "| heatmap_budget | device | 32 | 4 | 0 | yes |" in text
