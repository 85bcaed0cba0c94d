"""Skeleton: the LSP and FLIC layouts' known groups, flip permutation and limb end points;
bad layouts named; round trip through the checkpoint-safe dict."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_pose.data.mpii import MPII
from lightning_pose.data.skeleton import (
    FLIC_SKELETON,
    LSP_SKELETON,
    Limb,
    Skeleton,
    flip_pairs_from_names,
    joint_groups,
    lateral_tokens,
    mirror_name,
    side_free_name,
    stick,
)


def test_lsp_groups_pool_left_and_right_and_name_the_twelve_limb_joints() -> None:
    groups, joints = LSP_SKELETON.groups(), LSP_SKELETON.joints
    assert [joints[i] for i in groups["wrist"]] == ["right_wrist", "left_wrist"]
    assert len(groups["limb_joints"]) == 12
    assert set(joints) - {joints[i] for i in groups["limb_joints"]} == {"neck", "head_top"}
    arms = [LSP_SKELETON.limb_names.index(n) for n in ("right_upper_arm", "left_upper_arm")]
    assert LSP_SKELETON.limb_groups()["upper_arm"] == arms


def test_flip_permutation_swaps_each_pair_once_and_is_its_own_inverse() -> None:
    perm = LSP_SKELETON.flip_permutation()
    assert sorted(perm) == list(range(14))
    assert [perm[i] for i in perm] == list(range(14))
    joints = LSP_SKELETON.joints
    for a, b in LSP_SKELETON.flip_pairs:
        assert joints[a].replace("right", "left") == joints[b].replace("right", "left")
        assert (perm[a], perm[b]) == (b, a)
    assert perm[joints.index("neck")] == joints.index("neck")


def test_limb_endpoint_weights_average_the_end_joints() -> None:
    """LSP's torso runs from the hip midpoint to the shoulder midpoint; a stick from one joint
    to another."""
    weights = LSP_SKELETON.limb_endpoint_weights()  # (L, 2, K)
    assert weights.shape == (len(LSP_SKELETON.limbs), 2, 14) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, atol=1e-7, rtol=0)
    keypoints = np.arange(28, dtype=np.float32).reshape(14, 2)  # (K, 2)
    endpoints = weights @ keypoints  # (L, 2, 2)
    torso = LSP_SKELETON.limb_names.index("torso")
    hips = [LSP_SKELETON.joints.index(n) for n in ("right_hip", "left_hip")]
    np.testing.assert_allclose(endpoints[torso, 0], keypoints[hips].mean(0), atol=1e-6, rtol=0)


def test_equality_hash_and_dict_round_trip() -> None:
    d = FLIC_SKELETON.to_dict()
    again = Skeleton(d["name"], tuple(d["joints"]), tuple(map(tuple, d["flip_pairs"])),
                     d["torso"], d["head"], tuple(Limb(n, tuple(s), tuple(e))
                                                  for n, s, e in d["limbs"]))  # fmt: skip
    assert again == FLIC_SKELETON and hash(again) == hash(FLIC_SKELETON) and again != LSP_SKELETON
    assert FLIC_SKELETON.head is None
    assert repr(FLIC_SKELETON) == "Skeleton('flic', 11 joints, 5 limbs)"


def test_joint_groups_and_stick() -> None:
    assert joint_groups(["left_knee", "right_knee", "nose"]) == {"knee": [0, 1], "nose": [2]}
    # every lateral convention pools, by the flip pairs its names give
    assert joint_groups(["l_knee", "r_knee"]) == {"knee": [0, 1]}
    assert joint_groups(["paw_L", "tail", "paw_R"]) == {"paw": [0, 2], "tail": [1]}
    # stated pairs pool whatever the names; a joint in no pair stays apart under its name
    assert joint_groups(["a", "b", "left_c"], [(0, 1)]) == {"a/b": [0, 1], "left_c": [2]}
    limb = stick("shin", 3, 5)
    assert (limb.name, limb.start, limb.end) == ("shin", (3,), (5,))


# Each lateral naming convention: the names, the flip pairs found, the pooled group names.
CONVENTIONS = [
    (("left_hip", "right_hip", "neck"), ((0, 1),), ["hip", "neck"]),
    (("l_foot", "r_foot"), ((0, 1),), ["foot"]),
    (("r_foot", "l_foot"), ((1, 0),), ["foot"]),  # (left, right), whichever comes first
    (("paw_L", "paw_R", "tail"), ((0, 1),), ["paw", "tail"]),
    (("hip_l", "hip_r"), ((0, 1),), ["hip"]),
    (("LeftHand", "RightHand", "Head"), ((0, 1),), ["Hand", "Head"]),
    (("upperLeftArm", "upperRightArm"), ((0, 1),), ["upperArm"]),
    (("LEFT_EAR", "RIGHT_EAR"), ((0, 1),), ["EAR"]),
    (("hand.L", "hand.R"), ((0, 1),), ["hand"]),
    (("hand_left", "hand_right"), ((0, 1),), ["hand"]),
    # not lateral: a word that merely contains "left"/"l", or a side with no partner
    (("Leftover", "Rightover", "cleft", "crest_l"), (), ["Leftover", "Rightover", "cleft",
                                                      "crest_l"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("names", "pairs", "groups"), CONVENTIONS, ids=[names[0] for names, _, _ in CONVENTIONS]
)
def test_flip_pairs_and_groups_from_each_lateral_convention(
    names: tuple[str, ...], pairs: tuple, groups: list[str]
) -> None:
    assert flip_pairs_from_names(names) == pairs
    assert list(joint_groups(names)) == groups


def test_lateral_tokens_mirror_and_side_free_names_known_answers() -> None:
    assert lateral_tokens("paw_L") == [(4, 5, "L")]
    assert lateral_tokens("LeftHand") == [(0, 4, "Left")]
    assert lateral_tokens("nose") == [] and lateral_tokens("Leftover") == []
    assert [mirror_name(n) for n in ("paw_L", "l_foot", "LeftHand", "nose")] == [
        "paw_R", "r_foot", "RightHand", "nose"]  # fmt: skip
    # limb names as the COCO reader writes them: a limb pools with its mirror image
    assert side_free_name("left_knee_ankle") == "knee_ankle"
    assert side_free_name("nose_left_eye") == "nose_eye"
    assert side_free_name("left_hip_right_hip") == "hips"  # was read as "hip_right_hip"
    assert side_free_name("knee_L_paw_L") == "knee_paw"


def test_builtin_tables_are_unchanged() -> None:
    """LSP, FLIC and MPII report the groups they always did (pooled by their stated pairs)."""
    assert LSP_SKELETON.groups() == {
        "ankle": [0, 5], "knee": [1, 4], "hip": [2, 3], "wrist": [6, 11], "elbow": [7, 10],
        "shoulder": [8, 9], "neck": [12], "head_top": [13], "limb_joints": list(range(12)),
    }  # fmt: skip
    assert LSP_SKELETON.limb_groups() == {
        "lower_leg": [0, 2], "upper_leg": [1, 3], "lower_arm": [4, 6], "upper_arm": [5, 7],
        "torso": [8], "head": [9],
    }  # fmt: skip
    assert list(FLIC_SKELETON.groups()) == ["shoulder", "elbow", "wrist", "hip", "eye", "nose",
                                   "limb_joints"]  # fmt: skip
    assert FLIC_SKELETON.limb_groups() == {"upper_arm": [0, 2], "lower_arm": [1, 3], "torso": [4]}
    assert MPII.limb_groups() == LSP_SKELETON.limb_groups()
    assert MPII.groups()["limb_joints"] == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]


def test_limbs_pool_by_their_mirror_image_not_by_name() -> None:
    """COCO-style limb names: the hip-to-hip stick is its own mirror, nose-eye pools."""
    names = ("nose", "left_eye", "right_eye", "left_hip", "right_hip")
    skeleton = Skeleton(
        "face", names, flip_pairs_from_names(names), None, None,
        (stick("nose_left_eye", 0, 1), stick("nose_right_eye", 0, 2),
         stick("left_hip_right_hip", 3, 4)),
    )  # fmt: skip
    assert skeleton.limb_flip_pairs() == ((0, 1),)
    assert skeleton.limb_groups() == {"nose_eye": [0, 1], "hips": [2]}
    assert skeleton.groups() == {"nose": [0], "eye": [1, 2], "hip": [3, 4], "limb_joints": [3, 4]}


def critter(flip_pairs: tuple, derived: bool) -> Skeleton:
    """A 4-joint skeleton whose sides are named in two conventions (one joint unpaired)."""
    names = ("nose", "left_paw", "paw_R", "tail")
    return Skeleton("critter", names, flip_pairs, None, None, (), flip_pairs_derived=derived)


def test_lateral_joints_without_a_partner_refuse_flips_until_pairs_are_stated() -> None:
    derived = critter(flip_pairs_from_names(critter((), True).joints), derived=True)
    assert derived.flip_pairs == () and derived.unpaired_lateral_joints() == ["left_paw", "paw_R"]
    key = "data.dataset.init_args.flip_pairs"
    problem = derived.flip_pairs_problem(0.5, key)
    assert problem == (
        "skeleton 'critter': the joints ['left_paw', 'paw_R'] look left or right by name but "
        "no flip partner was found for them (pairs found from the names: none), and training "
        "flips images horizontally (data.flip_prob=0.5), which would teach them the wrong "
        f"side. Name the pairs in {key} (e.g. {key}=[[left_paw, <its mirror joint>]]; an empty "
        "list [] means no pairs) or set data.flip_prob=0"
    )
    assert derived.flip_pairs_problem(0.0, key) is None  # no flips: nothing to swap
    assert critter((), derived=False).flip_pairs_problem(0.5, key) is None  # [] stated
    stated = critter(((1, 2),), derived=False)
    assert stated.flip_pairs_problem(0.5, key) is None
    assert stated.flip_pairs_line() == (
        "flip pairs of skeleton 'critter' (stated): left_paw <-> paw_R"
    )
    assert stated.flip_pair_names() == [["left_paw", "paw_R"]]
    line = derived.flip_pairs_line()
    assert line == "flip pairs of skeleton 'critter' (from the joint names): none"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"torso": (0, 5)}, r"joint indices \[5\]"),
        ({"limbs": (Limb("x", (), (1,)),)}, "empty limb end"),
        ({"oks_sigmas": (0.1,)}, r"oks_sigmas has 1 values \[0.1\]; expected 2"),
        ({"oks_sigmas": (0.1, 0.0)}, "each > 0"),
    ],
)
def test_bad_layouts_are_named(kwargs: dict, match: str) -> None:
    args = {"name": "tiny", "joints": ("a", "b"), "flip_pairs": (), "torso": None,
            "head": None, "limbs": ()} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match=match):
        Skeleton(**args)
