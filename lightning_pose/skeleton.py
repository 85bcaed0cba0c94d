"""Joint definitions of the supported datasets: names, flip pairs, joint groups, normaliser joints.

A :class:`Skeleton` is the one place that says which index is which joint, which joints swap on
a horizontal flip, and which joints define the torso diameter (DeepPose §5, PDJ: left shoulder
to right hip) and the head segment (PCKh on LSP-style data: neck to head top).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Skeleton:
    """Joint layout of one dataset.

    Attributes:
        name: dataset family, e.g. ``"lsp"``.
        joints: joint names in annotation order, length K.
        flip_pairs: index pairs ``(left, right)`` swapped by a horizontal flip.
        torso: ``(left_shoulder, right_hip)`` indices; their distance is the torso diameter.
        head: ``(neck, head_top)`` indices for the head segment, or None where the dataset
            has no head-top joint (FLIC).
        limbs: index pairs that form the sticks scored by PCP and drawn on overlays.
    """

    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    torso: tuple[int, int]
    head: tuple[int, int] | None
    limbs: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def flip_permutation(self) -> list[int]:
        """Index permutation that swaps left and right joints: ``flipped = joints[perm]``."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def groups(self) -> dict[str, list[int]]:
        """Joint groups pooling left and right; see :func:`joint_groups`."""
        return joint_groups(self.joints)


def joint_groups(joint_names: Sequence[str]) -> dict[str, list[int]]:
    """Joint groups pooling left and right: ``{"wrist": [6, 11], "neck": [12], ...}``.

    The group name is the joint name without its ``left_``/``right_`` prefix.
    """
    out: dict[str, list[int]] = {}
    for i, joint in enumerate(joint_names):
        group = joint.removeprefix("left_").removeprefix("right_")
        out.setdefault(group, []).append(i)
    return out


LSP = Skeleton(
    name="lsp",
    joints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "neck",
        "head_top",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)),
    torso=(9, 2),  # left shoulder, right hip
    head=(12, 13),  # neck, head top
    # PCP sticks as in the LSP evaluation: lower/upper legs, lower/upper arms, torso, head.
    limbs=((0, 1), (1, 2), (5, 4), (4, 3), (6, 7), (7, 8), (11, 10), (10, 9), (12, 13)),
)

# FLIC: the 11 joints labelled in every example, in FLIC toolkit order (1-based indices
# 1-7, 10, 13, 14, 17 of the 29 coordinates).
FLIC_COORD_INDICES = (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)
FLIC = Skeleton(
    name="flic",
    joints=(
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_eye",
        "right_eye",
        "nose",
    ),
    flip_pairs=((0, 3), (1, 4), (2, 5), (6, 7), (8, 9)),
    torso=(0, 7),  # left shoulder, right hip
    head=None,
    limbs=((0, 1), (1, 2), (3, 4), (4, 5)),
)

SKELETONS: dict[str, Skeleton] = {"lsp": LSP, "lspet": LSP, "flic": FLIC}
