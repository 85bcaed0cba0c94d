"""The main job's plumbing at tiny scale: fit -> validate -> predict with overlays, and what it
prints; the step sizing of the budget."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightning_pose.cli.budget import (
    BF16_CPU_STEPS_PER_MIN,
    CPU_STEPS_PER_MIN,
    HANDFUL,
    default_steps,
    fit_args,
    forced_precision,
    main,
    max_time,
)
from lightning_pose.runtime.precision import choose_precision


def test_budget_sets_steps_schedule_and_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert default_steps(60, "32-true") == 60 * CPU_STEPS_PER_MIN == 3000
    assert default_steps(60, "bf16-mixed") == 60 * BF16_CPU_STEPS_PER_MIN == 3840
    native = choose_precision("cpu").precision == "bf16-mixed"  # what auto picks here
    assert default_steps(60) == (3840 if native else 3000) == default_steps(60, "auto")
    assert forced_precision(["--data.root=x", "--trainer.precision=32-true"]) == "32-true"
    assert forced_precision(["--data.root=x"]) is None
    assert max_time(58.5) == "00:00:58:30" and max_time(90) == "00:01:30:00"
    args = fit_args([], 150, 3)
    assert "--trainer.max_steps=150" in args
    assert not any("total_steps" in a for a in args)  # WarmupCosineLR's length: max_steps
    assert "--model.init_args.scheduler.init_args.warmup_steps=15" in args
    assert "--trainer.max_time=00:00:03:00" in args
    # by default the steps are a provisional plan that BudgetSchedule re-sizes from the
    # measured rate; --steps (planned=False) keeps a fixed run and schedule
    assert (
        args[-2:]
        == [
            "--trainer.callbacks+=lightning_pose.callbacks.BudgetSchedule",
            "--trainer.callbacks.budget_min=3",
        ]
        and "--trainer.max_epochs=-1" in args
    )
    schedule = "--model.init_args.scheduler=lightning_pose.models.schedules.PlannedCosineLR"
    assert args.index(schedule) < args.index(
        "--model.init_args.scheduler.init_args.warmup_steps=15"
    )
    fixed = fit_args([], 150, 3, planned=False)
    assert not any("BudgetSchedule" in a or "max_epochs" in a or "Planned" in a for a in fixed)


def test_the_main_job_augments_on_the_gpu_where_there_is_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a GPU the main job's batches are augmented on the device (the CPU loader set the pace
    of a GPU fit); on the CPU the workers' path stays, and a user override comes after it."""
    from lightning_pose.cli.budget import default_augment_on

    for cuda, expected in ((False, "cpu"), (True, "device")):
        monkeypatch.setattr("torch.cuda.is_available", lambda cuda=cuda: cuda)
        assert default_augment_on() == expected
        args = fit_args([], 150, 3, augment_on=default_augment_on())
        assert [a for a in args if a.startswith("--data.augment_on")] == [
            f"--data.augment_on={expected}"
        ]


def test_the_budget_recipe_builds_a_planned_schedule(tiny_root: Path) -> None:
    """The main job's fit command, parsed: the budget callback with the budget in seconds,
    the recipe's warm-up + cosine made re-plannable with its arguments."""
    from lightning_pose.callbacks import BudgetSchedule
    from lightning_pose.cli import main as cli_main
    from lightning_pose.cli.budget import REPO
    from lightning_pose.models.schedules import PlannedCosineLR

    # simcc_budget.yaml names WarmupCosineLR: the main job makes it re-plannable
    recipe = "conf/model/simcc_budget.yaml"
    configs = ["-c", str(REPO / "conf" / "lspet.yaml"), "-c", str(REPO / recipe)]
    args = fit_args(configs, 150, 2.5)[1:]  # no subcommand: parsed and built, not run
    cli = cli_main([*args, f"--data.root={tiny_root}", "--trainer.logger=false"], run=False)
    budget = [c for c in cli.trainer.callbacks if isinstance(c, BudgetSchedule)]
    assert len(budget) == 1 and budget[0].budget_s == 150.0
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = cli.model.scheduler_factory(optimizer, run_steps=150)
    assert isinstance(scheduler, PlannedCosineLR) and scheduler.warmup_steps == 15
    assert cli.trainer.max_steps == 150 and cli.trainer.max_epochs == -1


def test_main_job_ends_with_a_model_its_table_and_overlays(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = [
        f"--data.root={tiny_root}", "--data.input_size=64", "--data.batch_size=2",
        "--data.num_workers=0", "--data.max_samples=4", "--data.cache_images=false",
        "--trainer.accelerator=cpu", "--trainer.devices=1",
    ]  # fmt: skip
    assert main(["--budget-min", "5", "--steps", "2", "--", *overrides]) == 0
    run = next((tmp_path / "runs" / "lspet").glob("version_*"))
    assert (run / "checkpoints" / "last.ckpt").is_file()
    table = (run / "validate" / "val_metrics.md").read_text()
    assert "pdj@0.2" in table and "| **mean** |" in table
    # the table names the checkpoint it evaluated and that checkpoint's step (not step 0)
    assert table.startswith(f"checkpoint {run / 'checkpoints' / 'last.ckpt'}: epoch ")
    # evaluated in fp32 although the recipe's precision is auto (bf16 on a CPU with native bf16)
    assert table.splitlines()[0].endswith(", step 2; evaluated in precision 32-true")
    result = np.load(run / "predict" / "predictions.npz")
    # the tiny LSPet's validation images (im00010, im00020): fewer than the handful
    assert list(result["names"]) == ["im00010.jpg", "im00020.jpg"] and HANDFUL >= 2
    overlays = sorted(p.name for p in (run / "predict" / "overlays").iterdir())
    assert overlays == ["im00010.png", "im00020.png"]
    grid = cv2.imread(str(run / "predict" / "overlays_grid.png"))
    assert grid.shape == (256, 4 * 256, 3)
    printed = capsys.readouterr().out
    assert f"metrics table: {run / 'validate' / 'val_metrics.md'}" in printed
    assert f"overlays:      {run / 'predict' / 'overlays'} (2 images)" in printed
