"""Every built-in skeleton checked by joint name (LSP, FLIC, MPII, COCO-17 from the real
coco_mini file): which joints a horizontal flip swaps, which stay, the torso joints of PDJ
(DeepPose §5: left shoulder to right hip) and the head segment of PCKh; the flip test's known
answer through a real model and through the dataset's flip; and a negative control, a
deliberately wrong permutation that must fail that known answer."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from lightning_pose.data.coco import COCOKeypoints
from lightning_pose.data.mpii import MPII
from lightning_pose.data.skeleton import FLIC_SKELETON, LSP_SKELETON, Skeleton
from lightning_pose.data.transforms import augment
from lightning_pose.models import DeepPose
from tests.models.test_deeppose import TinyTrunk, make_batch

MINI = "coco_mini/annotations/person_keypoints_train2017.json"

# Written out by hand from each dataset's documentation, not derived from the names: the
# joints a horizontal flip swaps (person-centric left <-> right), the joints it leaves, the
# torso (left shoulder, right hip) and the head segment (neck, head top) or None.
EXPECTED = {
    "lsp": {
        "swapped": [
            ("left_ankle", "right_ankle"),
            ("left_knee", "right_knee"),
            ("left_hip", "right_hip"),
            ("left_wrist", "right_wrist"),
            ("left_elbow", "right_elbow"),
            ("left_shoulder", "right_shoulder"),
        ],
        "centre": ["neck", "head_top"],
        "torso": ("left_shoulder", "right_hip"),
        "head": ("neck", "head_top"),
    },
    "flic": {
        "swapped": [
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hip", "right_hip"),
            ("left_eye", "right_eye"),
        ],
        "centre": ["nose"],
        "torso": ("left_shoulder", "right_hip"),
        "head": None,  # FLIC has no head-top joint
    },
    "mpii": {
        "swapped": [
            ("left_ankle", "right_ankle"),
            ("left_knee", "right_knee"),
            ("left_hip", "right_hip"),
            ("left_wrist", "right_wrist"),
            ("left_elbow", "right_elbow"),
            ("left_shoulder", "right_shoulder"),
        ],
        "centre": ["pelvis", "thorax", "upper_neck", "head_top"],
        "torso": ("left_shoulder", "right_hip"),
        "head": ("upper_neck", "head_top"),
    },
    "coco-17": {
        "swapped": [
            ("left_eye", "right_eye"),
            ("left_ear", "right_ear"),
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
        ],
        "centre": ["nose"],
        "torso": ("left_shoulder", "right_hip"),  # as conf/coco_mini.yaml names them
        "head": None,  # COCO has no head-top joint
    },
}


def skeleton_by_name(name: str, shared_data: Path) -> Skeleton:
    if name == "coco-17":  # the reader builds it from the real file's person category
        reader = COCOKeypoints(
            MINI, MINI, "coco_mini/train2017", torso=("left_shoulder", "right_hip")
        )
        return reader.skeleton(shared_data)
    return {"lsp": LSP_SKELETON, "flic": FLIC_SKELETON, "mpii": MPII}[name]


def partner_by_name(expected: dict) -> dict[str, str]:
    """Joint name -> the name it takes in the mirror image (itself for a centre joint)."""
    partner = {name: name for name in expected["centre"]}
    for left, right in expected["swapped"]:
        partner[left], partner[right] = right, left
    return partner


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flip_swaps_left_and_right_and_keeps_the_centre_by_name(
    name: str, shared_data: Path
) -> None:
    skeleton, expected = skeleton_by_name(name, shared_data), EXPECTED[name]
    partner = partner_by_name(expected)
    assert sorted(skeleton.joints) == sorted(partner), f"{name}: joints {skeleton.joints}"
    perm = skeleton.flip_permutation()
    mirrored = {skeleton.joints[k]: skeleton.joints[perm[k]] for k in range(skeleton.num_joints)}
    assert mirrored == partner


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torso_and_head_joints_by_name(name: str, shared_data: Path) -> None:
    skeleton, expected = skeleton_by_name(name, shared_data), EXPECTED[name]
    assert skeleton.torso is not None
    assert tuple(skeleton.joints[j] for j in skeleton.torso) == expected["torso"]
    head = None if skeleton.head is None else tuple(skeleton.joints[j] for j in skeleton.head)
    assert head == expected["head"]


def distinct_joints(k: int) -> torch.Tensor:
    """(K, 2) box-normalised joints with a different x and y for every joint."""
    return torch.stack([torch.linspace(-0.4, 0.4, k), torch.linspace(0.35, -0.25, k)], dim=-1)


def flip_test_known_answer(skeleton: Skeleton, expected: dict) -> None:
    """A DeepPose head that ignores the image outputs the same joints for an image and its
    mirror; the flip test averages them with their mirror (Tompson et al. 2015 §4.3): a joint
    becomes ``((x - x_partner) / 2, (y + y_partner) / 2)`` with its partner named in
    ``expected``; a centre joint ``(0, y)``."""
    fixed = distinct_joints(skeleton.num_joints)  # (K, 2)
    model = DeepPose(TinyTrunk(), skeleton, flip_test=True).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(fixed.reshape(-1))
        (estimate,) = model.estimate(make_batch(batch_size=1))["stages"]  # (1, K, 2)
    index = {joint: k for k, joint in enumerate(skeleton.joints)}
    for joint, other in partner_by_name(expected).items():
        a, b = fixed[index[joint]], fixed[index[other]]
        answer = torch.stack([(a[0] - b[0]) / 2, (a[1] + b[1]) / 2])
        assert_close(estimate[0, index[joint]], answer, rtol=0, atol=1e-6, msg=joint)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flip_test_known_answer_by_name(name: str, shared_data: Path) -> None:
    flip_test_known_answer(skeleton_by_name(name, shared_data), EXPECTED[name])


def test_a_wrong_permutation_fails_the_flip_test_known_answer() -> None:
    """Negative control: LSP with the ankles paired with the opposite knees (right_ankle <->
    left_knee, right_knee <-> left_ankle) instead of with each other. The flip test must then
    miss the known answer, so the check above can fail."""
    wrong = Skeleton(
        name="lsp-wrong",
        joints=LSP_SKELETON.joints,
        flip_pairs=((0, 4), (1, 5), (2, 3), (6, 11), (7, 10), (8, 9)),
        torso=LSP_SKELETON.torso,
        head=LSP_SKELETON.head,
        limbs=LSP_SKELETON.limbs,
    )
    assert [wrong.joints[p] for p in wrong.flip_permutation()][:2] == ["left_knee", "left_ankle"]
    flip_test_known_answer(LSP_SKELETON, EXPECTED["lsp"])  # the right permutation passes
    with pytest.raises(AssertionError, match="right_ankle|left_ankle|right_knee|left_knee"):
        flip_test_known_answer(wrong, EXPECTED["lsp"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_flip_moves_each_label_to_its_partner_by_name(name: str, shared_data: Path) -> None:
    """The training flip (albumentations' HorizontalFlip, then the skeleton's permutation) on
    a 9 x 7 crop: the joint named ``left_x`` of the flipped sample sits at the mirror of the
    original ``right_x``, ``x -> W - 1 - x`` in pixel-centre coordinates."""
    skeleton, expected = skeleton_by_name(name, shared_data), EXPECTED[name]
    k, width, height = skeleton.num_joints, 9, 7
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0.5, 6.0, size=(k, 2)).astype(np.float32)  # (K, 2) crop pixels
    labelled = np.arange(k) % 3 != 0  # (K,) flags travel with their joint
    pipeline = A.Compose(
        [A.HorizontalFlip(p=1.0)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        save_applied_params=True,
    )
    image = np.zeros((height, width, 3), np.uint8)
    _, flipped, out_labelled, _ = augment(
        pipeline, image, keypoints, labelled, labelled.copy(), skeleton.flip_permutation()
    )
    index = {joint: i for i, joint in enumerate(skeleton.joints)}
    for joint, other in partner_by_name(expected).items():
        source = keypoints[index[other]]
        np.testing.assert_allclose(
            flipped[index[joint]], [width - 1 - source[0], source[1]], rtol=0, atol=1e-5
        )
        assert out_labelled[index[joint]] == labelled[index[other]], joint
