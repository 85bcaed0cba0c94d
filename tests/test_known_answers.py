"""Known answers end to end: models whose output is known, through the real data module, the
real Trainer and the package's evaluation and prediction writer.

* validate: a model that outputs each sample's own target (``keypoints_norm``) scores PDJ 1
  and a mean error of 0; the target moved by a fixed (3, 4) pixel offset in the original image
  scores a mean error of exactly 5 original pixels (the crop is half the image's resolution,
  so an error reported in crop pixels would read 2.5) and the PDJ of a 5-pixel error against
  each sample's torso diameter, measured by hand from the labels.
* predict: a model with a fixed box-normalised output, on person boxes from a detections file
  whose box is not square and not centred in its image: ``keypoints_px`` decoded by hand from
  the box the COCO protocol builds (square, side 1.25 x the longer side, centred on the box),
  and ``predictions_coco.json`` holding the same values + 0.5 (COCO's corner frame).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import scipy.io
import torch

from lightning_pose.callbacks.prediction_writer import PredictionWriter
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.predict_source import PredictSource
from lightning_pose.data.readers import LSPet
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models import DeepPose
from tests.conftest import write_lspet
from tests.models.test_deeppose import TinyTrunk

K = LSP_SKELETON.num_joints


class Oracle(DeepPose):
    """Outputs each sample's target in the box frame, moved by ``offset_px`` original pixels."""

    def __init__(self, offset_px: tuple[float, float]) -> None:
        # the shared evaluation protocol's metrics, the mean per-joint error included
        evaluation = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
        super().__init__(TinyTrunk(), LSP_SKELETON, evaluation=evaluation)
        self.offset_px = torch.tensor(offset_px)

    def estimate(self, batch: dict[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        offset_norm = self.offset_px / batch["box"][:, None, 2:]  # (B, 1, 2): pixels / box size
        return {"stages": [batch["keypoints_norm"] + offset_norm]}


def quiet_trainer(callbacks: list | None = None) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


@pytest.fixture
def lspet40(tmp_path: Path) -> Path:
    """Generated LSPet: 40 images of 64 x 48 (validation: every 10th, 4 images)."""
    write_lspet(tmp_path / "data" / "lspet", 40)
    return tmp_path / "data"


def torso_by_hand(root: Path, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Labelled flags (N, K) and the left shoulder-right hip distance (N,) of the given images,
    read from ``joints.mat`` itself (0 where either joint is not labelled)."""
    joints = scipy.io.loadmat(root / "lspet" / "joints.mat")["joints"]  # (14, 3, n), 1-based
    xy = joints[:, :2, indices].transpose(2, 0, 1) - 1  # (N, K, 2) pixel centres
    labelled = joints[:, 2, indices].T > 0  # (N, K)
    a, b = LSP_SKELETON.joints.index("left_shoulder"), LSP_SKELETON.joints.index("right_hip")
    torso = np.linalg.norm(xy[:, a] - xy[:, b], axis=-1)
    return labelled, np.where(labelled[:, a] & labelled[:, b], torso, 0.0)


@pytest.mark.parametrize("offset", [(0.0, 0.0), (3.0, 4.0)], ids=["truth", "truth+(3,4)px"])
def test_validate_known_answers_in_original_pixels(
    lspet40: Path, offset: tuple[float, float]
) -> None:
    dm = PoseDataModule(LSPet(), root=str(lspet40), input_size=32, batch_size=3, num_workers=0)
    (logged,) = quiet_trainer().validate(Oracle(offset), datamodule=dm, verbose=False)
    val = [int(i) for i in dm.split_indices("val")]
    assert val == [9, 19, 29, 39]
    labelled, torso = torso_by_hand(lspet40, val)
    error = float(np.hypot(*offset))  # 0 or 5 original pixels for every joint
    counted = labelled & (torso[:, None] > 0)  # (N, K): joints PDJ counts
    assert counted.sum() > 20
    for t in (0.05, 0.1, 0.2):
        hits = counted & (error <= t * torso[:, None])
        expected = hits.sum() / counted.sum()
        assert logged[f"val/pdj@{t}"] == pytest.approx(expected, abs=1e-6), t
    if offset != (0.0, 0.0):  # a 5-pixel error is caught at the smaller thresholds
        assert logged["val/pdj@0.05"] < 1.0
    assert logged["val/mean_error_px"] == pytest.approx(error, abs=1e-4)
    assert logged["val/count/mean_error_px"] == labelled.sum()


def test_predict_on_a_non_square_off_centre_box_known_answer(tmp_path: Path) -> None:
    """One 64 x 48 image, one detection ``[x, y, w, h] = [5, 8, 20, 30]`` in COCO's corner
    frame (tall, in the left part of the image). The box the model sees: centre
    ``(5 + 10 - 0.5, 8 + 15 - 0.5) = (14.5, 22.5)`` pixels, side ``1.25 x 30 = 37.5``. The
    model outputs right ankle (0.25, -0.5), right knee (-0.1, 0.3), every other joint (0, 0):
    keypoints (14.5 + 9.375, 22.5 - 18.75) = (23.875, 3.75), (14.5 - 3.75, 22.5 + 11.25) =
    (10.75, 33.75) and the centre (14.5, 22.5)."""
    root = tmp_path / "data"
    write_lspet(root / "lspet", 10)  # the reader's files (its skeleton); not predicted on
    images = tmp_path / "images"
    images.mkdir()
    (images / "000000000007.jpg").write_bytes(
        (root / "lspet" / "images" / "im00001.jpg").read_bytes()
    )
    detections = [{"image_id": 7, "bbox": [5.0, 8.0, 20.0, 30.0], "score": 0.9}]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    dm = PoseDataModule(
        LSPet(),
        root=str(root),
        input_size=32,
        batch_size=2,
        num_workers=0,
        predict=PredictSource(image_dir=str(images), boxes=str(tmp_path / "dets.json")),
    )
    fixed = torch.zeros(K, 2)
    fixed[LSP_SKELETON.joints.index("right_ankle")] = torch.tensor([0.25, -0.5])
    fixed[LSP_SKELETON.joints.index("right_knee")] = torch.tensor([-0.1, 0.3])
    model = DeepPose(TinyTrunk(), LSP_SKELETON).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(fixed.reshape(-1))
    out = tmp_path / "out"
    quiet_trainer([PredictionWriter(output_dir=str(out))]).predict(model, datamodule=dm)

    expected = np.tile([14.5, 22.5], (K, 1))  # (K, 2)
    expected[LSP_SKELETON.joints.index("right_ankle")] = [23.875, 3.75]
    expected[LSP_SKELETON.joints.index("right_knee")] = [10.75, 33.75]
    predictions = np.load(out / "predictions.npz")
    np.testing.assert_allclose(predictions["boxes_px"], [[14.5, 22.5, 37.5, 37.5]], atol=1e-5)
    np.testing.assert_allclose(predictions["keypoints_px"][0], expected, rtol=0, atol=1e-5)
    (result,) = json.loads((out / "predictions_coco.json").read_text())
    assert result["image_id"] == 7 and result["score"] == pytest.approx(0.9)
    coco = np.array(result["keypoints"]).reshape(K, 3)
    np.testing.assert_allclose(coco[:, :2], expected + 0.5, rtol=0, atol=1e-3)  # 3 decimals
    np.testing.assert_array_equal(coco[:, 2], np.ones(K))
