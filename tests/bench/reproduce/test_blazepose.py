"""Tests for bench/reproduce/blazepose.py without mediapipe: the landmark -> LSP joint mapping,
the pixel convention, the scoring (perfect landmarks, missing detections) and the left/right
check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.data.skeleton import LSP_SKELETON
from tests.bench import load


def _load_script():
    """The script, and the modules importing it imported."""
    before = set(sys.modules)
    module = load("reproduce/blazepose")
    return module, set(sys.modules) - before


bp, IMPORTED = _load_script()

# Landmark i sits at (i, 100 + i) pixels, so each joint names the landmark it came from.
LANDMARKS_PX = np.stack([np.arange(33.0), 100.0 + np.arange(33.0)], axis=-1)  # (33, 2)
# LSP joint (annotation order) -> expected (x, y): limb joints from BlazePose landmarks
# 28, 26, 24, 23, 25, 27, 16, 14, 12, 11, 13, 15; neck = midpoint of 11 and 12; head top =
# neck + 1.5 (ear midpoint (7.5, 107.5) - neck (11.5, 111.5)).
EXPECTED_LSP = np.array(
    [
        [28, 128],  # right ankle
        [26, 126],  # right knee
        [24, 124],  # right hip
        [23, 123],  # left hip
        [25, 125],  # left knee
        [27, 127],  # left ankle
        [16, 116],  # right wrist
        [14, 114],  # right elbow
        [12, 112],  # right shoulder
        [11, 111],  # left shoulder
        [13, 113],  # left elbow
        [15, 115],  # left wrist
        [11.5, 111.5],  # neck
        [5.5, 105.5],  # head top
    ]
)


def _close(actual, expected) -> None:
    torch.testing.assert_close(
        torch.as_tensor(np.asarray(actual, dtype=np.float64)),
        torch.as_tensor(np.asarray(expected, dtype=np.float64)),
        atol=1e-6,
        rtol=0,
    )


def _poses(n: int, seed: int) -> np.ndarray:
    """(n, 14, 2) random LSP poses in pixels, seeded."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(50, 250, (n, 1, 2)) + rng.uniform(-60, 60, (n, 14, 2))).astype(np.float32)


def _perfect_landmarks(pose: np.ndarray, seed: int) -> np.ndarray:
    """(33, 2) landmarks with each limb joint exactly on the LSP joint; the rest random."""
    landmarks = np.random.default_rng(seed).uniform(0, 300, (33, 2))
    for k in LSP_SKELETON.groups()["limb_joints"]:
        landmarks[bp.BLAZEPOSE_INDEX[LSP_SKELETON.joints[k]]] = pose[k]
    return landmarks


def test_importing_the_script_does_not_import_mediapipe() -> None:
    assert not any(name.split(".")[0] == "mediapipe" for name in IMPORTED)


def test_blazepose_to_lsp_known_answer() -> None:
    _close(bp.blazepose_to_lsp(LANDMARKS_PX), EXPECTED_LSP)


def test_no_detection_gives_nan_for_every_joint() -> None:
    pred = bp.blazepose_to_lsp(None)
    assert pred.shape == (14, 2) and np.isnan(pred).all()


def test_blazepose_to_lsp_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\(33, 2\)"):
        bp.blazepose_to_lsp(np.zeros((17, 2)))


def test_landmarks_to_px_puts_zero_at_the_centre_of_the_top_left_pixel() -> None:
    norm = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])  # (3, 2) fractions of W, H
    _close(bp.landmarks_to_px(norm, 200, 100), [[-0.5, -0.5], [199.5, 99.5], [99.5, 24.5]])


def test_perfect_limb_landmarks_score_100_on_limb_joints() -> None:
    poses = _poses(5, seed=0)  # (5, 14, 2)
    labelled = np.ones((5, 14), dtype=bool)
    labelled[1, 6] = False  # an unlabelled right wrist is not counted
    pred = np.stack([bp.blazepose_to_lsp(_perfect_landmarks(p, i)) for i, p in enumerate(poses)])
    results = bp.score(pred, poses, labelled)
    assert results["pdj@0.2/limb_joints"] == 1.0
    assert results["pdj@0.05/limb_joints"] == 1.0
    assert results["count/pdj/limb_joints"] == 5 * 12 - 1
    assert results["count/pdj"] == 5 * 14 - 1
    assert results["count/images"] == 5


def test_a_missing_detection_scores_zero_and_is_counted() -> None:
    poses = _poses(2, seed=1)  # (2, 14, 2)
    labelled = np.ones((2, 14), dtype=bool)
    found = bp.blazepose_to_lsp(_perfect_landmarks(poses[0], 0))
    pred = np.stack([found, bp.blazepose_to_lsp(None)])  # image 1: no detection
    results = bp.score(pred, poses, labelled)
    assert results["pdj@0.2/limb_joints"] == 0.5  # 12 hits of 24 counted limb joints
    assert results["count/pdj/limb_joints"] == 24
    alone = bp.score(pred[1:], poses[1:], labelled[1:])
    assert alone["pdj@0.2/limb_joints"] == 0.0 and alone["pdj@0.2"] == 0.0
    assert alone["count/pdj"] == 14


def test_side_agreement_tells_swapped_sides_apart() -> None:
    poses = _poses(4, seed=2)  # (4, 14, 2)
    labelled = np.ones((4, 14), dtype=bool)
    swapped = poses[:, LSP_SKELETON.flip_permutation()]
    assert bp.side_agreement(poses, poses, labelled, "shoulder") == (4, 4)
    assert bp.side_agreement(swapped, poses, labelled, "shoulder") == (0, 4)
    missing = poses.copy()
    missing[0] = np.nan  # no detection: not compared
    labelled[1, LSP_SKELETON.joints.index("right_hip")] = False  # one side unlabelled: not compared
    assert bp.side_agreement(missing, poses, labelled, "shoulder") == (3, 3)
    assert bp.side_agreement(poses, poses, labelled, "hip") == (3, 3)


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "report.md"
    bp.write_atomic(out, "old\n")
    bp.write_atomic(out, "new\n")
    assert out.read_text() == "new\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.md"]


def test_report_shows_the_key_number_and_n_a_where_nothing_was_counted() -> None:
    poses = _poses(2, seed=3)  # (2, 14, 2)
    labelled = np.ones((2, 14), dtype=bool)
    pred = np.stack([bp.blazepose_to_lsp(_perfect_landmarks(p, i)) for i, p in enumerate(poses)])
    row = {
        "name": "fake",
        "results": bp.score(pred, poses, labelled),
        "pdj_images": 2,
        "no_detection": 0,
        "no_detection_pdj": 0,
        "detected": {},  # nothing counted: "n/a", not an error
        "detect_ms": np.array([1.0, 3.0]),
        "total_ms": np.array([2.0, 4.0]),
        "swapped": bp.score(pred[:, LSP_SKELETON.flip_permutation()], poses, labelled),
        "sides": [(2, 2), (1, 2)],
    }
    text = bp.report([row], {"images": "2", "command": "`python bench/reproduce/blazepose.py`"})
    assert "| fake | **100.0** | 100.0 |" in text
    assert "| 2 (2) | 24 / 28 | 0 (0) | n/a |" in text
    assert "| fake | 2.0 / 2.0 | 3.0 / 3.0 |" in text
    assert "| fake | 2 / 2 (100.0 %) | 1 / 2 (50.0 %) |" in text
