"""Skeleton: the LSP and FLIC layouts' known groups, flip permutation and limb end points;
bad layouts named; round trip through the checkpoint-safe dict."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_pose.data.skeleton import FLIC, LSP, Limb, Skeleton, joint_groups, stick


def test_lsp_groups_pool_left_and_right_and_name_the_twelve_limb_joints() -> None:
    groups = LSP.groups()
    assert [LSP.joints[i] for i in groups["wrist"]] == ["right_wrist", "left_wrist"]
    assert len(groups["limb_joints"]) == 12
    assert {LSP.joints[i] for i in range(14)} - {LSP.joints[i] for i in groups["limb_joints"]} == {
        "neck",
        "head_top",
    }
    assert LSP.limb_groups()["upper_arm"] == [LSP.limb_names.index(n) for n in
                                              ("right_upper_arm", "left_upper_arm")]  # fmt: skip


def test_flip_permutation_swaps_each_pair_once_and_is_its_own_inverse() -> None:
    perm = LSP.flip_permutation()
    assert sorted(perm) == list(range(14))
    assert [perm[i] for i in perm] == list(range(14))
    for a, b in LSP.flip_pairs:
        assert LSP.joints[a].replace("right", "left") == LSP.joints[b].replace("right", "left")
        assert (perm[a], perm[b]) == (b, a)
    assert perm[LSP.joints.index("neck")] == LSP.joints.index("neck")


def test_limb_endpoint_weights_average_the_end_joints() -> None:
    """LSP's torso runs from the hip midpoint to the shoulder midpoint; a stick from one joint
    to another."""
    weights = LSP.limb_endpoint_weights()  # (L, 2, K)
    assert weights.shape == (len(LSP.limbs), 2, 14) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, atol=1e-7, rtol=0)
    keypoints = np.arange(28, dtype=np.float32).reshape(14, 2)  # (K, 2)
    endpoints = weights @ keypoints  # (L, 2, 2)
    torso = LSP.limb_names.index("torso")
    hips = [LSP.joints.index(n) for n in ("right_hip", "left_hip")]
    np.testing.assert_allclose(endpoints[torso, 0], keypoints[hips].mean(0), atol=1e-6, rtol=0)


def test_equality_hash_and_dict_round_trip() -> None:
    d = FLIC.to_dict()
    again = Skeleton(d["name"], tuple(d["joints"]), tuple(map(tuple, d["flip_pairs"])),
                     d["torso"], d["head"], tuple(Limb(n, tuple(s), tuple(e))
                                                  for n, s, e in d["limbs"]))  # fmt: skip
    assert again == FLIC and hash(again) == hash(FLIC) and again != LSP
    assert FLIC.head is None and repr(FLIC) == "Skeleton('flic', 11 joints, 5 limbs)"


def test_joint_groups_and_stick() -> None:
    assert joint_groups(["left_knee", "right_knee", "nose"]) == {"knee": [0, 1], "nose": [2]}
    # only the full left_/right_ prefixes pool (COCO's short l_/r_ names stay apart)
    assert joint_groups(["l_knee", "r_knee"]) == {"l_knee": [0], "r_knee": [1]}
    limb = stick("shin", 3, 5)
    assert (limb.name, limb.start, limb.end) == ("shin", (3,), (5,))


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
