"""LatestCheckpoint: ``last.ckpt`` holds the final state of a fit, not the last improvement."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from lightning_pose.callbacks.checkpoint import best_and_last
from lightning_pose.cli import main
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]


def test_last_ckpt_is_the_final_step_with_the_dataset_configs_callbacks(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    cli = main(
        [
            "fit",
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *tiny_args(tiny_root, max_samples=None),
            "--trainer.devices=1",
            "--trainer.max_steps=7",  # ends between two validations (steps 3 and 6)
            "--trainer.val_check_interval=3",
            "--trainer.limit_val_batches=1",
        ]
    )
    assert cli.trainer.global_step == 7
    # the fit's SIGTERM and Ctrl-C handlers end with it
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    best, last = best_and_last(cli.trainer)
    assert best is not None and best.name.startswith("best-")
    assert last is not None and last.name == "last.ckpt" and last.parent == best.parent
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 7
    assert torch.load(best, map_location="cpu", weights_only=True)["global_step"] in (3, 6)
    # the same weights as the model at the end of the fit
    final = cli.model.state_dict()
    assert all(torch.equal(state["state_dict"][k], v) for k, v in final.items())
    assert sorted(p.name for p in last.parent.iterdir()) == sorted({best.name, "last.ckpt"})
