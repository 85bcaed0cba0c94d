"""MetricsTableWriter: known-answer tables, "best" bookkeeping, and atomic writes that leave
nothing behind on failure (PredictionWriter: test_prediction_writer.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightning_pose.callbacks import MetricsTableWriter
from lightning_pose.callbacks.metrics_table import evaluation_report, metrics_table
from lightning_pose.callbacks.prediction_writer import save_npz_atomic
from lightning_pose.data.skeleton import Limb, Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol


def test_metrics_table_known_answer() -> None:
    metrics = {
        "val/pdj@0.1": 0.5,
        "val/pdj@0.1/wrist": 0.25,
        "val/pdj@0.1/neck": float("nan"),
        "val/pckh@0.5": 0.875,
        "val/pckh@0.5/wrist": 1.0,
        "test/pdj@0.1": 0.0,  # another stage: ignored
    }
    expected = (
        "| joint group | pdj@0.1 | pckh@0.5 |\n"
        "|---|---:|---:|\n"
        "| wrist | 25.0 | 100.0 |\n"
        "| neck | - | - |\n"
        "| **mean** | 50.0 | 87.5 |\n"
    )
    assert metrics_table(metrics, "val", ["wrist", "neck"], ["pdj@0.1", "pckh@0.5"]) == expected


JOINTS = ["left_wrist", "right_wrist", "neck"]
TINY = Skeleton("tiny", tuple(JOINTS), ((0, 1),), (0, 2), None, (Limb("left_reach", (2,), (0,)),))
DECLARED = EvaluationProtocol().declarations(TINY)


def stub_module(extra_metrics: tuple[str, ...] = ()) -> SimpleNamespace:
    """The attributes MetricsTableWriter reads from a PoseEstimator."""
    evaluation = EvaluationProtocol(extra_metrics=extra_metrics)
    return SimpleNamespace(skeleton=TINY, evaluation=evaluation, num_stages=1)


def stub_trainer(
    metrics: dict[str, float], epoch: int, log_dir: Path, fn: str = "fit", sanity: bool = False
) -> SimpleNamespace:
    """The attributes MetricsTableWriter reads from a Trainer."""
    return SimpleNamespace(
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
        current_epoch=epoch,
        global_step=10 * epoch,
        state=SimpleNamespace(fn=fn),
        sanity_checking=sanity,
        log_dir=str(log_dir),
        default_root_dir=str(log_dir),
        is_global_zero=True,
        precision="32-true",
    )


def val_metrics(pdj: float) -> dict[str, float]:
    return {
        "val/pckh@0.5": 0.9,
        "val/pdj@0.2": pdj,
        "val/pdj@0.05": pdj / 4,
        "val/pdj@0.2/wrist": pdj,
        "val/pdj@0.2/neck": 1.0,
        "val/loss": 0.125,
    }


def test_metrics_table_writer_writes_best_only_when_monitor_improves(tmp_path: Path) -> None:
    writer = MetricsTableWriter(monitor="val/pdj@0.2")
    module = stub_module()
    writer.on_validation_end(stub_trainer(val_metrics(0.1), 0, tmp_path, sanity=True), module)
    assert list(tmp_path.iterdir()) == []  # the sanity check writes nothing

    def best_epoch() -> int:
        return json.loads((tmp_path / "val_metrics_best.json").read_text())["epoch"]

    for epoch, pdj, expected_best in ((0, 0.5, 0), (1, 0.4, 0), (2, 0.6, 2), (3, 0.6, 2)):
        writer.on_validation_end(stub_trainer(val_metrics(pdj), epoch, tmp_path), module)
        latest = json.loads((tmp_path / "val_metrics.json").read_text())
        assert latest["epoch"] == epoch and latest["val/pdj@0.2"] == pytest.approx(pdj)
        assert best_epoch() == expected_best, f"after epoch {epoch}"
        best_md = (tmp_path / "val_metrics_best.md").read_text()
        assert best_md.startswith(
            f"epoch {expected_best}, step {10 * expected_best}; evaluated in precision 32-true\n\n"
        )
    assert writer.best == pytest.approx(0.6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "metric_declarations.json",
        "val_metrics.json",
        "val_metrics.md",
        "val_metrics_best.json",
        "val_metrics_best.md",
    ]
    table = (tmp_path / "val_metrics.md").read_text().splitlines()
    # PDJ columns first, by threshold; then the other metrics. Rows: groups, then the mean.
    assert table[2:] == [
        "| joint group | pdj@0.05 | pdj@0.2 | pckh@0.5 |",
        "|---|---:|---:|---:|",
        "| wrist | - | 60.0 | - |",
        "| neck | - | 100.0 | - |",
        "| limb_joints | - | - | - |",  # the skeleton's group; these metrics have no value
        "| **mean** | 15.0 | 60.0 | 90.0 |",
    ]


def test_metrics_table_writer_outside_fit_and_for_test(tmp_path: Path) -> None:
    writer = MetricsTableWriter(output_dir=str(tmp_path / "tables"))
    module = stub_module()
    writer.on_validation_end(stub_trainer(val_metrics(0.5), 0, tmp_path, fn="validate"), module)
    test = {"test/pdj@0.2": 0.25, "test/pdj@0.2/wrist": 0.5}
    writer.on_test_end(stub_trainer(test, 0, tmp_path, fn="test"), module)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "metric_declarations.json",
        "test_metrics.json",
        "test_metrics.md",
        "val_metrics.json",
        "val_metrics.md",
    ]
    assert "| wrist | 50.0 |" in (tmp_path / "tables" / "test_metrics.md").read_text()


def test_metrics_table_writer_on_another_rank_finds_the_folder_but_writes_nothing(
    tmp_path: Path,
) -> None:
    """Under DDP ``trainer.log_dir`` is a broadcast: every rank must ask for it (rank zero
    alone would wait forever), and only rank zero writes."""
    asked = []

    class Rank1Trainer(SimpleNamespace):
        @property
        def log_dir(self) -> str:
            asked.append(True)
            return str(tmp_path)

    trainer = Rank1Trainer(**vars(stub_trainer(val_metrics(0.5), 0, tmp_path)))
    del trainer.__dict__["log_dir"]
    trainer.is_global_zero = False
    writer = MetricsTableWriter()
    writer.on_validation_end(trainer, stub_module())
    assert asked == [True]
    assert list(tmp_path.iterdir()) == []
    assert writer.best == pytest.approx(0.5)  # every rank keeps the same best


def test_evaluation_report_limb_and_stage_tables() -> None:
    metrics = {
        "val/pdj@0.2": 0.5,
        "val/pcp@0.5": 0.25,
        "val/pcp@0.5/left_reach": 0.25,
        "val/stage1/pdj@0.2": 0.4,
        "val/stage2/pdj@0.2": 0.5,
        "val/stage2/pcp@0.5": 0.25,
    }
    report = evaluation_report(metrics, "val", DECLARED, ["wrist", "neck"], ["left_reach"], 2)
    assert "| limb group | pcp@0.5 |\n|---|---:|\n| left_reach | 25.0 |\n" in report
    assert (
        "| stage | pdj@0.2 | pcp@0.5 |\n|---|---:|---:|\n| 1 | 40.0 | - |\n| 2 | 50.0 | 25.0 |"
        in report
    )


def test_metrics_table_writer_lower_is_better_monitor_from_its_declaration(
    tmp_path: Path,
) -> None:
    """``mean_error_px`` declares lower is better: the best table follows the smallest error."""
    writer = MetricsTableWriter(monitor="val/mean_error_px")
    module = stub_module(("lightning_pose.metrics.MeanJointError",))
    for epoch, error, expected_best in ((0, 9.0, 0), (1, 12.0, 0), (2, 4.5, 2), (3, 4.5, 2)):
        metrics = {"val/pdj@0.2": 0.5, "val/mean_error_px": error}
        writer.on_validation_end(stub_trainer(metrics, epoch, tmp_path), module)
        best = json.loads((tmp_path / "val_metrics_best.json").read_text())
        assert best["epoch"] == expected_best, f"after epoch {epoch}"
    assert writer.best == pytest.approx(4.5)
    table = (tmp_path / "val_metrics.md").read_text().splitlines()
    assert table[2] == "| joint group | pdj@0.2 | mean_error_px |"
    assert table[-1] == "| **mean** | 50.0 | 4.5 |"  # percent, then pixels


def test_metrics_table_writer_mode_and_an_undeclared_monitor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        MetricsTableWriter(mode="lower")
    writer = MetricsTableWriter(monitor="val/loss")
    metrics = {"val/pdj@0.2": 0.5, "val/loss": 0.25}
    with pytest.raises(ValueError, match="'val/loss' is no declared metric's key"):
        writer.on_validation_end(stub_trainer(metrics, 0, tmp_path), stub_module())
    writer = MetricsTableWriter(monitor="val/loss", mode="min")
    for epoch, loss in enumerate((0.25, 0.5, 0.125)):
        metrics = {"val/pdj@0.2": 0.5, "val/loss": loss}
        writer.on_validation_end(stub_trainer(metrics, epoch, tmp_path), stub_module())
    assert writer.best == pytest.approx(0.125)


def test_evaluation_report_multi_stage_with_metrics_beyond_pdj_pckh_pcp() -> None:
    """A cascade on COCO-like data logs bbox-PCK, OKS AP and the mean error per stage: the
    stage table shows them, in declaration order (it used to crash on rank zero)."""
    declared = EvaluationProtocol(
        pck_bbox_thresholds=(0.2,), extra_metrics=("lightning_pose.metrics.MeanJointError",)
    ).declarations()
    metrics = {
        "val/pck_bbox@0.2": 0.75,
        "val/pck_bbox@0.2/wrist": 0.5,
        "val/mean_error_px": 12.25,
        "val/oks_ap": 0.5,
        "val/stage1/mean_error_px": 20.0,
        "val/stage1/pck_bbox@0.2": 0.5,
        "val/stage2/pck_bbox@0.2": 0.75,
        "val/stage2/oks_ap": 0.5,
        "val/stage2/mean_error_px": 12.25,
        "val/count/images": 4,
        "val/count/pdj": 0,
        "val/count/pckh": 0,
        "val/count/pcp": 5,
        "val/count/pck_bbox": 8,
        "val/count/mean_error_px": 8,
    }
    report = evaluation_report(metrics, "val", declared, ["wrist"], ["left_reach"], stages=2)
    assert report == (
        "| joint group | pck_bbox@0.2 | mean_error_px |\n"
        "|---|---:|---:|\n"
        "| wrist | 50.0 | - |\n"
        "| **mean** | 75.0 | 12.2 |\n"
        "\n"
        "| stage | pck_bbox@0.2 | oks_ap | mean_error_px |\n"
        "|---|---:|---:|---:|\n"
        "| 1 | 50.0 | - | 20.0 |\n"
        "| 2 | 75.0 | 50.0 | 12.2 |\n"
        "\n"
        "Counted: 4 images; PDJ 0 labelled joints (images with both torso joints labelled), "
        "PCKh 0 joints (head segment labelled), PCP 5 limbs (both ends labelled), "
        "mean joint error 8 labelled joints.\n"
    )


def test_evaluation_report_counted_line_as_before() -> None:
    metrics = {
        "val/pdj@0.2": 0.5,
        "val/count/images": 3,
        "val/count/pdj": 40,
        "val/count/pckh": 38,
        "val/count/pcp": 29,
        "val/count/pck_bbox": 0,
        "val/count/pdj/limb_joints": 34,
    }
    report = evaluation_report(metrics, "val", DECLARED, ["wrist"], ["left_reach"])
    assert report.endswith(
        "\nCounted: 3 images; PDJ 40 labelled joints (images with both torso joints labelled), "
        "PCKh 38 joints (head segment labelled), PCP 29 limbs (both ends labelled); "
        "limb_joints: 34 of the PDJ joints.\n"
    )


def test_save_npz_atomic_failure_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.npz"
    save_npz_atomic(good, keypoints_px=np.ones((2, 3, 2)))

    def failing_replace(src, dst) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_npz_atomic(tmp_path / "new.npz", keypoints_px=np.zeros((2, 3, 2)))
    with pytest.raises(OSError, match="disk full"):
        save_npz_atomic(good, keypoints_px=np.zeros((2, 3, 2)))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["good.npz"]  # no new file, no temp file
    np.testing.assert_array_equal(np.load(good)["keypoints_px"], np.ones((2, 3, 2)))


def test_per_image_table_known_answer() -> None:
    from lightning_pose.callbacks.evaluation_files import per_image_table

    declared = EvaluationProtocol(
        pdj_thresholds=(0.2,), extra_metrics=("lightning_pose.metrics.MeanJointError",)
    ).declarations(TINY)
    scores = {
        "index": np.array([7, 2, 5]),
        "pdj@0.2": np.array([1.0, 3.0, 0.0]),  # hits
        "count/pdj": np.array([2.0, 3.0, 0.0]),  # image 5: no torso, nothing counted
        "mean_error_px": np.array([3.0, 30.0, float("inf")]),
        "count/mean_error_px": np.array([2.0, 3.0, 1.0]),
    }
    assert per_image_table(scores, declared) == (
        "index,pdj@0.2,count/pdj,mean_error_px,count/mean_error_px\n"
        "2,1,3,10,3\n"
        "5,,0,inf,1\n"
        "7,0.5,2,1.5,2\n"
    )
