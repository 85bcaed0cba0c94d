"""predict on a video: predictions.npz, predictions.csv (DeepLabCut's layout) and the overlay
video, from a real clip made from real LSPet images."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from lightning_pose.callbacks.video_outputs import frames_csv
from lightning_pose.cli import main
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.data.video import VideoError
from tests.data.test_video import SIZE, write_clip

REPO = Path(__file__).resolve().parents[2]


def test_frames_csv_known_answer() -> None:
    keypoints = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.5, 6.25], [7.0, 8.0]]])  # (2, 2, 2)
    scores = np.array([[0.5, 0.25], [1.0, 0.0]])
    text = frames_csv(["a", "b"], np.array([0.0, 0.04]), keypoints, scores)
    assert text.splitlines() == [
        "scorer,lightning_pose,lightning_pose,lightning_pose,lightning_pose,lightning_pose,"
        "lightning_pose,lightning_pose",
        "bodyparts,time,a,a,a,b,b,b",
        "coords,seconds,x,y,likelihood,x,y,likelihood",
        "0,0.000000,1.000,2.000,0.500,3.000,4.000,0.250",
        "1,0.040000,5.500,6.250,1.000,7.000,8.000,0.000",
    ]
    no_scores = frames_csv(["a", "b"], np.array([0.0, 0.04]), keypoints, None).splitlines()
    assert no_scores[2] == "coords,seconds,x,y,x,y"
    assert no_scores[3] == "0,0.000000,1.000,2.000,3.000,4.000"


def predict_video(tmp_path: Path, video: Path, out: Path, *extra: str) -> None:
    main(
        [
            "predict",
            "-c", str(REPO / "conf" / "lspet.yaml"),
            "-c", str(REPO / "conf" / "model" / "heatmap_budget.yaml"),
            "--model.init_args.trunk=lightning_pose.models.ResNetTrunk",
            "--data.input_size=64", "--data.batch_size=4", "--data.num_workers=1",
            "--data.cache_images=false", "--trainer.accelerator=cpu", "--trainer.devices=1",
            "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
            f"--data.predict.video={video}", f"--trainer.callbacks.output_dir={out}",
            *extra,
        ]
    )  # fmt: skip


def test_predict_on_a_real_clip_writes_npz_csv_and_overlay(
    tmp_path: Path, shared_data: Path
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", shared_data)  # 6 frames at 10 fps
    out = tmp_path / "pred"
    predict_video(tmp_path, clip, out, "--trainer.callbacks.draw_overlays=true")

    result = np.load(out / "predictions.npz")
    assert sorted(result.files) == ["boxes_px", "frame_index", "keypoints_px", "scores", "time_s"]
    np.testing.assert_array_equal(result["boxes_px"], [[79.5, 59.5, 160.0, 160.0]] * 6)
    np.testing.assert_array_equal(result["frame_index"], np.arange(6))
    np.testing.assert_allclose(result["time_s"], np.arange(6) / 10.0, atol=1e-9, rtol=0)
    assert result["keypoints_px"].shape == (6, 14, 2) and result["scores"].shape == (6, 14)
    # keypoints in original-frame pixels: inside the square box around the 160 x 120 frame
    assert np.isfinite(result["keypoints_px"]).all()
    assert (np.abs(result["keypoints_px"] - [79.5, 59.5]) <= 80.0).all()

    with (out / "predictions.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[1][2::3] == list(LSP_SKELETON.joints) and len(rows) == 3 + 6
    assert [int(r[0]) for r in rows[3:]] == list(range(6))
    table = np.array([r[2:] for r in rows[3:]], dtype=float).reshape(6, 14, 3)
    np.testing.assert_allclose(table[..., :2], result["keypoints_px"], atol=5e-4, rtol=0)
    np.testing.assert_allclose(table[..., 2], result["scores"], atol=5e-4, rtol=0)

    overlay = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert overlay.get(cv2.CAP_PROP_FRAME_COUNT) == 6 and overlay.get(cv2.CAP_PROP_FPS) == 10.0
    ok, frame = overlay.read()
    assert ok and frame.shape == (SIZE[1], SIZE[0], 3)
    assert not list(out.glob("*.tmp*")) and not list(out.glob("tmp*"))


def test_a_broken_video_stops_predict_naming_the_frame(tmp_path: Path, shared_data: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", shared_data, fourcc="MJPG")
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # frames 3-5 lost
    out = tmp_path / "pred"
    with pytest.raises(VideoError, match=rf"{clip}: frame 3 of 6 failed to decode"):
        predict_video(tmp_path, clip, out)
    assert not (out / "predictions.npz").exists() and not (out / "predictions.csv").exists()


def test_an_unopenable_video_stops_predict_before_the_model_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoError, match=rf"data.predict.video: {bad} cannot be opened"):
        predict_video(tmp_path, bad, tmp_path / "pred")


def test_predict_on_a_clip_crops_each_frame_s_detection(tmp_path: Path, shared_data: Path) -> None:
    """A detections file (image_id = frame index): frames with a box are cropped from it (the
    best-scoring one), the others from the whole frame; boxes_px says which box each used."""
    import json

    clip = write_clip(tmp_path / "clip.mp4", shared_data)  # 6 frames, 160 x 120
    dets = tmp_path / "dets.json"
    entries = [
        {"image_id": 1, "bbox": [40, 20, 40, 80], "score": 0.9},
        {"image_id": 1, "bbox": [0, 0, 10, 10], "score": 0.2},
        {"image_id": 4, "bbox": [100, 30, 50, 60], "score": 0.7},
    ]
    dets.write_text(json.dumps(entries))
    out, whole = tmp_path / "pred", tmp_path / "whole"
    predict_video(tmp_path, clip, out, f"--data.predict.boxes={dets}")
    predict_video(tmp_path, clip, whole)
    boxed, plain = np.load(out / "predictions.npz"), np.load(whole / "predictions.npz")
    expected = np.array([[79.5, 59.5, 160.0, 160.0]] * 6)
    expected[1] = [59.5, 59.5, 100.0, 100.0]  # centre (60, 60) - 0.5, side 1.25 x 80
    expected[4] = [124.5, 59.5, 75.0, 75.0]
    np.testing.assert_allclose(boxed["boxes_px"], expected, rtol=0, atol=1e-4)
    same = [0, 2, 3, 5]  # no detection: the whole frame, as without a file
    np.testing.assert_allclose(
        boxed["keypoints_px"][same], plain["keypoints_px"][same], rtol=0, atol=1e-3
    )
    moved = np.abs(boxed["keypoints_px"][[1, 4]] - plain["keypoints_px"][[1, 4]]).max()
    assert moved > 1.0  # another crop, another estimate
    # the estimate of a cropped frame lies in that crop's box, in frame pixels
    for frame in (1, 4):
        cx, cy, side, _ = expected[frame]
        assert (np.abs(boxed["keypoints_px"][frame] - [cx, cy]) <= side / 2 + 1e-3).all()
