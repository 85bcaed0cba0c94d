"""The W&B panels: poses drawn on a known skeleton (pixel colours), and what a fit logs to a
WandbLogger (resolved config once, image panel and PDJ curves after each validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytorch_lightning.loggers import WandbLogger

from lightning_pose.cli import main
from lightning_pose.data.skeleton import Limb, Skeleton
from lightning_pose.plots.pose import PREDICTED_COLOUR, TRUE_COLOUR, draw_comparison, draw_skeleton
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]

# Two joints and the stick between them.
STICK = Skeleton("stick", ("top", "bottom"), (), (0, 1), None, (Limb("body", (0,), (1,)),))


def test_draw_comparison_on_a_known_skeleton() -> None:
    image = np.zeros((21, 21, 3), dtype=np.uint8)
    true_px = np.array([[5.0, 4.0], [5.0, 16.0]])  # a vertical stick at x = 5
    predicted_px = np.array([[15.0, 4.0], [15.0, 16.0]])  # and one at x = 15
    out = draw_comparison(image, predicted_px, true_px, np.array([True, True]), STICK)
    assert out.shape == image.shape and not image.any()  # drawn on a copy
    for y in (4, 10, 16):  # joints and the middle of each limb
        assert tuple(out[y, 5]) == TRUE_COLOUR
        assert tuple(out[y, 15]) == PREDICTED_COLOUR
    assert not out[:, 8:13].any() and not out[:2].any()  # nothing between or above them


def test_unlabelled_joints_and_their_limbs_are_not_drawn() -> None:
    image = np.zeros((21, 21, 3), dtype=np.uint8)
    keypoints = np.array([[5.0, 4.0], [5.0, 16.0]])
    out = draw_skeleton(image, keypoints, STICK, TRUE_COLOUR, labelled=np.array([True, False]))
    assert tuple(out[4, 5]) == TRUE_COLOUR  # the labelled joint
    assert not out[8:].any()  # neither the limb nor the unlabelled joint


class RecordingWandbLogger(WandbLogger):
    """A WandbLogger (the run is disabled under the tests' WANDB_MODE) that keeps what it is
    given."""

    def __init__(self, save_dir: str = ".") -> None:
        super().__init__(save_dir=save_dir)
        self.hyperparams: list[dict[str, Any]] = []
        self.logged: list[dict[str, Any]] = []

    def log_hyperparams(self, params: Any) -> None:
        self.hyperparams.append(dict(params))
        super().log_hyperparams(params)

    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        self.logged.append(dict(metrics))
        super().log_metrics(metrics, step)


def test_fit_logs_the_config_images_and_curves(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *tiny_args(tiny_root),
            "--trainer.logger=tests.callbacks.test_wandb_panels.RecordingWandbLogger",
            f"--trainer.logger.save_dir={tmp_path}",
            "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=1",
            "--trainer.limit_val_batches=1",
            "--trainer.val_check_interval=1.0",
        ]
    )
    wandb.finish()  # the (disabled) run: a later test starts from none
    logger = cli.trainer.logger
    assert isinstance(logger, RecordingWandbLogger)
    configs = [p for p in logger.hyperparams if "trainer" in p]
    assert len(configs) == 1  # the resolved config, once
    assert configs[0]["data"]["input_size"] == 64
    assert configs[0]["model"]["init_args"]["trunk"]["class_path"].endswith("ResNetTrunk")
    panels = [m for m in logger.logged if "val/skeletons" in m]
    assert len(panels) == 2  # each validation epoch, not the sanity check
    # the same fixed images each time: the whole validation set, smaller than num_images = 8
    captions = [[image._caption for image in m["val/skeletons"]] for m in panels]
    assert captions[0] == captions[1] and len(captions[0]) == len(cli.datamodule.splits["val"])
    assert all(isinstance(image, wandb.Image) for image in panels[0]["val/skeletons"])
    assert all("val/pdj_curve" in m for m in panels)


def test_a_stopped_and_resumed_fit_logs_into_one_offline_w_and_b_run(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run folder keeps the W&B run's id; ``--ckpt_path last`` continues that run."""
    import wandb

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    wandb.teardown()  # wandb's process-wide settings keep the mode of an earlier test's run
    args = [
        "fit",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *tiny_args(tiny_root),
        "--trainer.limit_val_batches=1",
        "--trainer.val_check_interval=1.0",
    ]
    first = main([*args, "--trainer.max_steps=2"])
    run_id = first.trainer.loggers[1].experiment.id
    wandb.finish()
    run = tmp_path / "runs" / "lspet" / "version_0"
    assert (run / "wandb_run_id").read_text().strip() == run_id
    resumed = main([*args, "--trainer.max_steps=4", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 4
    assert resumed.trainer.loggers[1].experiment.id == run_id
    wandb.finish()
    offline_runs = sorted((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2 and all(p.name.endswith(run_id) for p in offline_runs)
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    wandb.teardown()  # later tests: back to WANDB_MODE=disabled


def test_summary_modes_follow_the_declared_direction() -> None:
    from lightning_pose.callbacks.wandb_panels import summary_modes
    from lightning_pose.metrics.protocol import EvaluationProtocol

    protocol = EvaluationProtocol(
        pdj_thresholds=(0.2,), extra_metrics=("lightning_pose.metrics.MeanJointError",)
    )
    skeleton = Skeleton("t", ("a", "b"), (), (0, 1), None, ())  # no limbs, no OKS
    modes = summary_modes(protocol.declarations(skeleton), 2)
    assert modes["val/pdj@0.2"] == modes["val/stage1/pdj@0.2"] == "max"
    assert modes["val/mean_error_px"] == modes["val/stage2/mean_error_px"] == "min"
    assert "val/pcp@0.5" not in modes and "val/oks_ap" not in modes
    assert "val/stage1/pdj@0.2" not in summary_modes(protocol.declarations(skeleton), 1)


def test_fit_start_defines_each_declared_summary_on_rank_zero_only() -> None:
    from types import SimpleNamespace

    from lightning_pose.callbacks import WandbValidationPanels
    from lightning_pose.metrics.protocol import EvaluationProtocol

    defined: list[tuple[str, dict]] = []

    class Experiment:
        def define_metric(self, name: str, **kwargs: Any) -> None:
            defined.append((name, kwargs))

    class StubWandbLogger(WandbLogger):
        @property
        def experiment(self) -> Experiment:
            return Experiment()

    logger = object.__new__(StubWandbLogger)  # no W&B run: only ``experiment`` is read
    protocol = EvaluationProtocol(extra_metrics=("lightning_pose.metrics.MeanJointError",))
    module = SimpleNamespace(evaluation=protocol, skeleton=STICK, num_stages=1)
    panels = WandbValidationPanels()
    panels.on_fit_start(SimpleNamespace(loggers=[logger], is_global_zero=False), module)
    assert defined == []
    panels.on_fit_start(SimpleNamespace(loggers=[logger], is_global_zero=True), module)
    modes = {name: kwargs["summary"] for name, kwargs in defined}
    assert modes["val/pdj@0.2"] == "max" and modes["val/mean_error_px"] == "min"
    assert all(kwargs["step_metric"] == "trainer/global_step" for _, kwargs in defined)
