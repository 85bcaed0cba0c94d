"""Joint definitions: names, flip pairs, limbs, normaliser joints, OKS sigmas.

A :class:`Skeleton` is the one place that says which index is which joint, which joints swap on
a horizontal flip, which joints define the torso diameter (DeepPose §5, PDJ: left shoulder to
right hip) and the head segment (PCKh on LSP-style data: neck to head top), and which sticks
(limbs) PCP scores, overlays draw and the multi-task model detects as body parts. It reaches
the models from the data through ``link_arguments`` (``data.skeleton`` -> ``model.skeleton``):
nothing outside this module finds a joint by its name. A reader (``lightning_pose.data``) returns
the skeleton of its dataset: :data:`LSP_SKELETON` and :data:`FLIC_SKELETON` below (named apart
from the readers ``lightning_pose.data.LSP`` and ``FLIC``), or one built from a COCO category
(:mod:`lightning_pose.data.coco`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Limb:
    """A stick between two end points; each end point is the mean of one or more joints.

    Attributes:
        name: e.g. ``"left_upper_arm"``; a limb and its mirror image (through the flip
            pairs) pool in :meth:`Skeleton.limb_groups`.
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
        flip_pairs_derived: True where ``flip_pairs`` were found from the joint names
            (:func:`flip_pairs_from_names`) rather than stated (a built-in table, a config's
            ``flip_pairs``; an empty list stated means "no pairs"): training with horizontal
            flips then refuses joints that look lateral but got no partner
            (:meth:`flip_pairs_problem`).
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
        flip_pairs_derived: bool = False,
    ) -> None:
        self.name = name
        self.category_id = int(category_id)
        self.flip_pairs_derived = bool(flip_pairs_derived)
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
        """Joint groups pooling each flip pair (see :func:`joint_groups`), and
        ``"limb_joints"``: the shoulders, elbows, wrists, hips, knees and ankles the skeleton
        has (LSP: 12 of its 14 joints, without neck and head top), the joints the
        off-the-shelf comparison of ``docs/RESULTS.md`` scores (``pdj@0.2/limb_joints``)."""
        groups = joint_groups(self.joints, self.flip_pairs)
        limb = sorted(
            i for name, js in groups.items() if name.lower() in LIMB_JOINT_GROUPS for i in js
        )
        if limb:
            groups["limb_joints"] = limb
        return groups

    def limb_mirrors(self) -> list[int | None]:
        """For each limb, the limb that is its mirror image (its end points swapped through
        the flip pairs, either direction): itself for a symmetric limb (LSP's torso, COCO's
        hip-to-hip stick), None where the mirror is not one of the limbs."""
        perm = self.flip_permutation()
        ends = [frozenset((frozenset(lb.start), frozenset(lb.end))) for lb in self.limbs]
        mirrors: list[int | None] = []
        for limb in self.limbs:
            mirrored = frozenset(
                (frozenset(perm[j] for j in limb.start), frozenset(perm[j] for j in limb.end))
            )
            mirrors.append(ends.index(mirrored) if mirrored in ends else None)
        return mirrors

    def limb_flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """Index pairs ``(a, b)``, a < b, of limbs that are each other's mirror image
        (:meth:`limb_mirrors`)."""
        return tuple((a, b) for a, b in enumerate(self.limb_mirrors()) if b is not None and a < b)

    def limb_groups(self) -> dict[str, list[int]]:
        """Limb groups pooling each limb with its mirror (:meth:`limb_mirrors`):
        ``{"lower_leg": [0, 2], ..., "torso": [8], "head": [9]}`` for LSP; a symmetric limb
        is a group of its own, named without its side tokens (``left_hip_right_hip`` ->
        ``hips``)."""
        mirrors = self.limb_mirrors()
        pairs = [(a, b) for a, b in enumerate(mirrors) if b is not None and a <= b]
        return joint_groups(self.limb_names, pairs)

    def unpaired_lateral_joints(self) -> list[str]:
        """Joints whose names look left or right (:func:`lateral_tokens`) but that are in no
        flip pair, in joint order."""
        paired = {j for pair in self.flip_pairs for j in pair}
        return [
            name for i, name in enumerate(self.joints) if i not in paired and lateral_tokens(name)
        ]

    def flip_pairs_problem(self, flip_prob: float, key: str) -> str | None:
        """Why training with horizontal flips (probability ``flip_prob``) must not start, or
        None: where the pairs were derived from the names (``flip_pairs_derived``) and joints
        that look lateral got no partner, every flipped sample would teach those joints the
        wrong side.

        Args:
            flip_prob: the training augmentation's flip probability (``data.flip_prob``).
            key: the config key that states the pairs, named in the message (the COCO
                reader's ``data.dataset.init_args.flip_pairs``).
        """
        unpaired = self.unpaired_lateral_joints()
        if flip_prob <= 0 or not self.flip_pairs_derived or not unpaired:
            return None
        return (
            f"skeleton {self.name!r}: the joints {unpaired} look left or right by name but no "
            f"flip partner was found for them (pairs found from the names: "
            f"{self.flip_pairs_text()}), and training flips images horizontally "
            f"(data.flip_prob={flip_prob}), which would teach them the wrong side. Name the "
            f"pairs in {key} (e.g. {key}=[[{unpaired[0]}, <its mirror joint>]]; an empty list "
            "[] means no pairs) or set data.flip_prob=0"
        )

    def flip_pairs_text(self) -> str:
        """``"left_hip <-> right_hip, ..."``, or ``"none"``."""
        named = [f"{self.joints[a]} <-> {self.joints[b]}" for a, b in self.flip_pairs]
        return ", ".join(named) or "none"

    def flip_pairs_line(self) -> str:
        """The log line of the flip pairs: ``"flip pairs of skeleton 'lsp' (stated): right_ankle
        <-> left_ankle, ..."``; ``(from the joint names)`` where they were derived."""
        source = "from the joint names" if self.flip_pairs_derived else "stated"
        return f"flip pairs of skeleton {self.name!r} ({source}): {self.flip_pairs_text()}"

    def flip_pair_names(self) -> list[list[str]]:
        """The flip pairs as joint names, ``[[left, right], ...]`` (a run's records)."""
        return [[self.joints[a], self.joints[b]] for a, b in self.flip_pairs]

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


# Lateral naming conventions, as regular expressions whose group "side" is the side token:
# whole words left/right (any case, separated by _ - . or a space, or followed by a capital or
# a digit: left_hip, hip_left, leftHip, LEFT_HIP), capitalised Left/Right inside a CamelCase
# name (LeftHand, handLeft, upperLeftArm), and single letters l/r/L/R separated from the rest
# (l_foot, paw_L, hand.R, hip_l_1).
_SEP = r"[_\-. ]"
LATERAL_PATTERNS = (
    re.compile(rf"(?:^|(?<={_SEP}))(?P<side>left|right|LEFT|RIGHT)(?=$|{_SEP}|[A-Z0-9])"),
    re.compile(r"(?P<side>Left|Right)(?![a-z])"),
    re.compile(rf"(?:^|(?<={_SEP}))(?P<side>[lrLR])(?=$|{_SEP})"),
)
_MIRROR = {"left": "right", "LEFT": "RIGHT", "Left": "Right", "l": "r", "L": "R"}
_RIGHT_TOKENS = frozenset(_MIRROR.values())
_MIRROR |= {v: k for k, v in _MIRROR.items()}


def lateral_tokens(name: str) -> list[tuple[int, int, str]]:
    """The side tokens of a joint or limb name: ``(start, end, token)`` for each, in order
    (see :data:`LATERAL_PATTERNS`); [] for a name that does not look lateral.

    Known answers: ``"paw_L"`` -> ``[(4, 5, "L")]``; ``"LeftHand"`` -> ``[(0, 4, "Left")]``;
    ``"nose"`` -> ``[]``.
    """
    found = {
        (m.start("side"), m.end("side"), m.group("side"))
        for pattern in LATERAL_PATTERNS
        for m in pattern.finditer(name)
    }
    return sorted(found)


def mirror_name(name: str) -> str:
    """``name`` with every side token swapped (``paw_L`` -> ``paw_R``, ``LeftHand`` ->
    ``RightHand``, ``l_foot`` -> ``r_foot``); a name without one is returned as it is."""
    out, last = [], 0
    for start, end, token in lateral_tokens(name):
        out += [name[last:start], _MIRROR[token]]
        last = end
    return "".join(out) + name[last:]


def side_free_name(name: str) -> str:
    """``name`` without its side tokens and the separator beside each: the name of the group
    pooling a joint (or limb) with its mirror. ``left_wrist`` -> ``wrist``, ``paw_L`` ->
    ``paw``, ``LeftHand`` -> ``Hand``, ``nose_left_eye`` -> ``nose_eye``; a stick between two
    partners that leaves one part twice reads as the plural (``left_hip_right_hip`` ->
    ``hips``)."""
    out, last = [], 0
    for start, end, _ in lateral_tokens(name):
        if start > 0 and re.match(_SEP, name[start - 1]) and start - 1 >= last:
            start -= 1  # the separator before the token
        elif end < len(name) and re.match(_SEP, name[end]):
            end += 1  # else the one after it
        out.append(name[last:start])
        last = end
    stem = "".join(out) + name[last:]
    stem = stem.strip("_-. ") or name
    half = len(stem) // 2
    if len(stem) % 2 == 1 and stem[half] == "_" and stem[:half] == stem[half + 1 :]:
        return f"{stem[:half]}s"  # hip_hip -> hips
    return stem


def flip_pairs_from_names(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Index pairs ``(left, right)`` of joints whose names are each other's mirror
    (:func:`mirror_name`: ``left_``/``right_``, ``l_``/``r_``, ``_l``/``_r``, ``_L``/``_R``,
    ``Left``/``Right`` anywhere, as in MMPose's per-keypoint ``swap`` entries), in the order
    of the first joint of each pair; a joint is in at most one pair.

    Known answers: ``("paw_L", "paw_R", "tail")`` -> ``((0, 1),)``;
    ``("r_foot", "l_foot")`` -> ``((1, 0),)``.
    """
    index = {name: i for i, name in enumerate(names)}
    used: set[int] = set()
    pairs = []
    for i, name in enumerate(names):
        j = index.get(mirror_name(name))
        if j is None or j == i or i in used or j in used:
            continue
        right = lateral_tokens(name)[0][2] in _RIGHT_TOKENS
        pairs.append((j, i) if right else (i, j))  # (left, right)
        used |= {i, j}
    return tuple(pairs)


def joint_groups(
    names: Sequence[str], flip_pairs: Sequence[tuple[int, int]] | None = None
) -> dict[str, list[int]]:
    """Groups pooling each flip pair: ``{"wrist": [6, 11], "neck": [12], ...}`` (joints or
    limbs), in the order of each group's first member.

    A pair's group is named by :func:`side_free_name` of its first member (``paw_L``,
    ``paw_R`` -> ``paw``), or ``"a/b"`` where the names carry no side token (pairs a config
    states for joints ``a`` and ``b``); a joint in no pair is a group of its own under its
    full name.

    Args:
        names: the joint (or limb) names.
        flip_pairs: index pairs to pool (a pair ``(i, i)``: a symmetric item, named without
            its side tokens); None = :func:`flip_pairs_from_names` of ``names``.
    """
    if flip_pairs is None:
        flip_pairs = flip_pairs_from_names(names)
    partner = {a: b for a, b in flip_pairs} | {b: a for a, b in flip_pairs}
    out: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        j = partner.get(i)
        if j is not None and j < i:
            continue  # pooled with its partner, listed there
        members = [i] if j in (None, i) else [i, j]
        group = name
        if j is not None and lateral_tokens(name):
            group = side_free_name(name)
        elif j is not None and j != i:
            group = f"{name}/{names[j]}"
        out.setdefault(group, []).extend(members)
    return out


def stick(name: str, a: int, b: int) -> Limb:
    """A limb from joint ``a`` to joint ``b`` (each end a single joint)."""
    return Limb(name, (a,), (b,))


LSP_SKELETON = Skeleton(
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
FLIC_SKELETON = Skeleton(
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
