"""Segment lengths and limb end points by known answers."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from lightning_pose.codecs.segments import limb_endpoints, segment_lengths
from lightning_pose.data.skeleton import LSP_SKELETON


def test_segment_lengths_known_answer() -> None:
    keypoints = torch.tensor(
        [
            [[0.0, 0.0], [3.0, 4.0], [9.0, 9.0]],
            [[1.0, 1.0], [1.0, 7.0], [9.0, 9.0]],
            [[1.0, 1.0], [1.0, 7.0], [9.0, 9.0]],
        ]
    )  # (B=3, K=3, 2) px
    labelled = torch.tensor([[True, True, False], [True, True, True], [True, False, True]])
    lengths = segment_lengths(keypoints, labelled, (0, 1))
    assert_close(lengths, torch.tensor([5.0, 6.0, 0.0]), atol=1e-6, rtol=0)


def test_torso_diameter_is_left_shoulder_to_right_hip() -> None:
    kp = torch.zeros(1, 14, 2)
    kp[0, 9] = torch.tensor([0.0, 0.0])  # left shoulder
    kp[0, 2] = torch.tensor([0.3, 0.4])  # right hip
    labelled = torch.ones(1, 14, dtype=torch.bool)
    assert_close(
        segment_lengths(kp, labelled, LSP_SKELETON.torso), torch.tensor([0.5]), rtol=0, atol=1e-6
    )


def test_segment_lengths_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labelled"):
        segment_lengths(torch.zeros(2, 3, 2), torch.ones(2, 3), (0, 1))
    with pytest.raises(ValueError, match="out of range"):
        segment_lengths(torch.zeros(2, 3, 2), torch.ones(2, 3, dtype=torch.bool), (0, 3))


def test_lsp_limb_endpoints_torso_uses_midpoints() -> None:
    kp = torch.zeros(1, 14, 2)
    kp[0, 2], kp[0, 3] = torch.tensor([0.0, 10.0]), torch.tensor([4.0, 10.0])  # hips
    kp[0, 8], kp[0, 9] = torch.tensor([0.0, 0.0]), torch.tensor([4.0, 2.0])  # shoulders
    kp[0, 7] = torch.tensor([-3.0, 5.0])  # right elbow
    labelled = torch.ones(1, 14, dtype=torch.bool)
    weights = torch.from_numpy(LSP_SKELETON.limb_endpoint_weights())
    ends, limb_labelled = limb_endpoints(kp, labelled, weights)  # (1, 10, 2, 2), (1, 10)
    torso = LSP_SKELETON.limb_names.index("torso")
    assert_close(ends[0, torso], torch.tensor([[2.0, 10.0], [2.0, 1.0]]), rtol=0, atol=1e-6)
    upper_arm = LSP_SKELETON.limb_names.index("right_upper_arm")  # elbow -> shoulder
    assert_close(ends[0, upper_arm], torch.tensor([[-3.0, 5.0], [0.0, 0.0]]), rtol=0, atol=1e-6)
    assert limb_labelled.all()
    labelled[0, 3] = False  # left hip: the torso and the left upper leg lose their label
    _, limb_labelled = limb_endpoints(kp, labelled, weights)
    lost = {LSP_SKELETON.limb_names[i] for i in torch.nonzero(~limb_labelled[0]).flatten().tolist()}
    assert lost == {"torso", "left_upper_leg"}
