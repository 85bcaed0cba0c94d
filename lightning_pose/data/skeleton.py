"""Joint definitions: names, flip pairs, limbs, normaliser joints, OKS sigmas.

A :class:`Skeleton` is the one place that says which index is which joint, which joints swap on
a horizontal flip, which joints define the torso diameter (DeepPose §5, PDJ: left shoulder to
right hip) and the head segment (PCKh on LSP-style data: neck to head top), and which sticks
(limbs) PCP scores, overlays draw and the multi-task model detects as body parts. It reaches
the models from the data through ``link_arguments`` (``data.skeleton`` -> ``model.skeleton``):
nothing outside this module finds a joint by its name. A reader (``lightning_pose.data``) returns
the skeleton of its dataset: :data:`LSP` and :data:`FLIC` below, or one built from a COCO
category (:mod:`lightning_pose.data.coco`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Limb:
    """A stick between two end points; each end point is the mean of one or more joints.

    Attributes:
        name: e.g. ``"left_upper_arm"``; left/right prefixes pool in :func:`joint_groups`.
        start, end: joint indices whose mean is the end point (one joint for most limbs;
            the LSP torso runs from the hip midpoint to the shoulder midpoint).
    """

    name: str
    start: tuple[int, ...]
    end: tuple[int, ...]


class Skeleton:
    """Joint layout of one dataset (MMPose's dataset metainfo, as a plain object).

    A plain class rather than a dataclass so that LightningCLI links the object itself
    (``data.skeleton`` -> ``model.init_args.skeleton``) instead of expanding its fields into
    config keys.

    Args:
        name: dataset family, e.g. ``"lsp"``.
        joints: joint names in annotation order, length K.
        flip_pairs: index pairs ``(left, right)`` swapped by a horizontal flip.
        torso: ``(left_shoulder, right_hip)`` indices; their distance is the torso diameter
            (DeepPose §5). None where the skeleton has no torso (PDJ is then absent).
        head: ``(neck, head_top)`` indices for the head segment, or None where the dataset
            has no head-top joint (FLIC).
        limbs: the sticks scored by PCP, drawn on overlays and detected as body parts.
        oks_sigmas: K per-keypoint OKS constants (COCO keypoint evaluation, ``sigmas`` of
            pycocotools' ``COCOeval``), or None where OKS AP is not computed.
        category_id: the COCO category id of the instances (a COCO file's ``categories`` entry
            this skeleton was read from), written into COCO keypoint results
            (``predictions_coco.json``) so that COCO tools match them to the ground truth; 1
            (what ``lightning_pose.data.convert`` writes) for the built-in datasets.

    Raises:
        ValueError: an index outside [0, K), a limb with an empty end, or ``oks_sigmas`` whose
            length is not K or with a value <= 0.
    """

    def __init__(
        self,
        name: str,
        joints: tuple[str, ...],
        flip_pairs: tuple[tuple[int, int], ...],
        torso: tuple[int, int] | None,
        head: tuple[int, int] | None,
        limbs: tuple[Limb, ...],
        oks_sigmas: tuple[float, ...] | None = None,
        category_id: int = 1,
    ) -> None:
        self.name = name
        self.category_id = int(category_id)
        self.joints = tuple(joints)
        self.flip_pairs = tuple(tuple(p) for p in flip_pairs)
        self.torso = None if torso is None else tuple(torso)
        self.head = None if head is None else tuple(head)
        self.limbs = tuple(limbs)
        self.oks_sigmas = None if oks_sigmas is None else tuple(float(s) for s in oks_sigmas)
        k = len(self.joints)
        if self.oks_sigmas is not None and (
            len(self.oks_sigmas) != k or min(self.oks_sigmas, default=1.0) <= 0
        ):
            raise ValueError(
                f"skeleton {name!r}: oks_sigmas has {len(self.oks_sigmas)} values "
                f"{list(self.oks_sigmas)}; expected {k} (one per joint), each > 0"
            )
        used = [*(self.torso or ()), *(self.head or ())]
        used += [j for a, b in self.flip_pairs for j in (a, b)]
        used += [j for limb in self.limbs for j in (*limb.start, *limb.end)]
        bad = sorted({j for j in used if not 0 <= j < k})
        if bad or any(not limb.start or not limb.end for limb in self.limbs):
            raise ValueError(f"skeleton {name!r}: joint indices {bad} or an empty limb end")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Skeleton) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.joints))

    def __repr__(self) -> str:
        return f"Skeleton({self.name!r}, {len(self.joints)} joints, {len(self.limbs)} limbs)"

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def limb_names(self) -> list[str]:
        return [limb.name for limb in self.limbs]

    def flip_permutation(self) -> list[int]:
        """Index permutation that swaps left and right joints: ``flipped = joints[perm]``."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def groups(self) -> dict[str, list[int]]:
        """Joint groups pooling left and right (see :func:`joint_groups`), and
        ``"limb_joints"``: the shoulders, elbows, wrists, hips, knees and ankles the skeleton
        has (LSP: 12 of its 14 joints, without neck and head top), the joints the
        off-the-shelf comparison of ``docs/RESULTS.md`` scores (``pdj@0.2/limb_joints``)."""
        groups = joint_groups(self.joints)
        limb = sorted(i for name in LIMB_JOINT_GROUPS for i in groups.get(name, []))
        if limb:
            groups["limb_joints"] = limb
        return groups

    def limb_groups(self) -> dict[str, list[int]]:
        """Limb groups pooling left and right: ``{"upper_arm": [7, 9], "torso": [8], ...}``."""
        return joint_groups(self.limb_names)

    def limb_endpoint_weights(self) -> np.ndarray:
        """Averaging weights that turn joints into limb end points.

        ``endpoints = weights @ keypoints`` per sample; row ``(l, 0)`` is limb l's start,
        ``(l, 1)`` its end, each a mean of its joints.

        Shapes:
            returns (L, 2, K) float32, each row summing to 1.
        """
        weights = np.zeros((len(self.limbs), 2, self.num_joints), dtype=np.float32)
        for i, limb in enumerate(self.limbs):
            for e, joints in enumerate((limb.start, limb.end)):
                weights[i, e, list(joints)] = 1.0 / len(joints)
        return weights

    def to_dict(self) -> dict:
        """Plain types only (lists, str, int): safe in checkpoints read with ``weights_only``."""
        return {
            "name": self.name,
            "joints": list(self.joints),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "torso": None if self.torso is None else list(self.torso),
            "head": None if self.head is None else list(self.head),
            "limbs": [[limb.name, list(limb.start), list(limb.end)] for limb in self.limbs],
            "oks_sigmas": None if self.oks_sigmas is None else list(self.oks_sigmas),
            "category_id": self.category_id,
        }


# Joint groups (left and right pooled) on the arms and legs: the 12 "limb joints" of LSP.
LIMB_JOINT_GROUPS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def joint_groups(joint_names: Sequence[str]) -> dict[str, list[int]]:
    """Groups pooling left and right: ``{"wrist": [6, 11], "neck": [12], ...}``.

    The group name is the name without its ``left_``/``right_`` prefix (joints or limbs).
    """
    out: dict[str, list[int]] = {}
    for i, joint in enumerate(joint_names):
        group = joint.removeprefix("left_").removeprefix("right_")
        out.setdefault(group, []).append(i)
    return out


def stick(name: str, a: int, b: int) -> Limb:
    """A limb from joint ``a`` to joint ``b`` (each end a single joint)."""
    return Limb(name, (a,), (b,))


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
    # The ten PCP sticks of the LSP evaluation (DeepPose Table 1 columns: torso, upper and
    # lower legs, upper arms, forearms, head). LSP has no pelvis or neck-base joint pair for
    # the torso stick: it runs from the hip midpoint to the shoulder midpoint.
    limbs=(
        stick("right_lower_leg", 0, 1),
        stick("right_upper_leg", 1, 2),
        stick("left_lower_leg", 5, 4),
        stick("left_upper_leg", 4, 3),
        stick("right_lower_arm", 6, 7),
        stick("right_upper_arm", 7, 8),
        stick("left_lower_arm", 11, 10),
        stick("left_upper_arm", 10, 9),
        Limb("torso", (2, 3), (8, 9)),
        stick("head", 12, 13),
    ),
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
    limbs=(
        stick("left_upper_arm", 1, 0),
        stick("left_lower_arm", 2, 1),
        stick("right_upper_arm", 4, 3),
        stick("right_lower_arm", 5, 4),
        Limb("torso", (6, 7), (0, 3)),
    ),
)
