"""MPII Human Pose (Andriluka et al., CVPR 2014) in the annotation layout of HRNet and MMPose.

Layout: ``mpii_train.json`` / ``mpii_val.json``, a list of people, each
``{"image": "015601864.jpg", "center": [x, y], "scale": s, "joints": [[x, y] x 16],
"joints_vis": [0|1 x 16]}`` (MATLAB 1-based pixels; ``scale`` x 200 px is the person's
height), and optionally ``mpii_gt_val.mat`` with ``headboxes_src`` (2, 2, N): per validation
person the head box corners ``(x1, y1), (x2, y2)``, in the order of ``mpii_val.json``.

Conventions, as HRNet's and MMPose 0.x's readers:

* pixels: joints and centre minus 1 (0 = centre of the top-left pixel);
* ``joints_vis`` 1 = labelled; this layout has no separate occlusion flag, so
  ``visible = labelled``; unlabelled joints' coordinates are set to 0;
* box: a square centred on ``center`` moved down by 15 x ``scale`` px (to keep the feet),
  side ``bbox_scale`` (1.25) x 200 x ``scale``;
* PCKh's normaliser (the official protocol): 0.6 x the head-box diagonal where head boxes are
  given (the validation people); otherwise the upper-neck to head-top segment (as on LSP). The
  choice is logged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pytorch_lightning.utilities import rank_zero_info

from lightning_pose.data.annotations import (
    DatasetError,
    PoseAnnotations,
    PoseReader,
    read_json,
    require,
)
from lightning_pose.data.skeleton import Skeleton, stick

MPII_LAYOUT = (
    "a JSON list of people with image, center [x, y], scale, joints (16 x [x, y]) and "
    "joints_vis (16), as HRNet's and MMPose's mpii_train.json / mpii_val.json"
)
HEAD_BOX_SCALE = 0.6  # the official PCKh's SC_BIAS: head size = 0.6 x head-box diagonal


MPII = Skeleton(
    name="mpii",
    joints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    torso=(13, 2),  # left shoulder, right hip (DeepPose §5)
    head=(8, 9),  # upper neck, head top
    limbs=(
        stick("right_lower_leg", 0, 1),
        stick("right_upper_leg", 1, 2),
        stick("left_lower_leg", 5, 4),
        stick("left_upper_leg", 4, 3),
        stick("right_lower_arm", 10, 11),
        stick("right_upper_arm", 11, 12),
        stick("left_lower_arm", 15, 14),
        stick("left_upper_arm", 14, 13),
        stick("torso", 6, 7),  # pelvis to thorax
        stick("head", 8, 9),
    ),
)


class MPIIKeypoints(PoseReader):
    """MPII in HRNet's / MMPose's JSON layout (see the module docstring).

    Args:
        train_json, val_json: the files (relative to the data root, or absolute).
        image_dir: the folder of MPII's images (``image`` is relative to it).
        head_boxes: ``mpii_gt_val.mat`` with ``headboxes_src`` (2, 2, N) for the N people of
            ``val_json``, in its order; None = PCKh on the neck-head-top segment.
        bbox_scale: box side as a multiple of 200 x ``scale``.

    Raises:
        DatasetError: on reading: a missing or malformed file, naming it and its first bad
            entry (0-based); head boxes whose count is not the validation file's.
    """

    def __init__(
        self,
        train_json: str,
        val_json: str,
        image_dir: str,
        head_boxes: str | None = None,
        bbox_scale: float = 1.25,
    ) -> None:
        self.train_json = train_json
        self.val_json = val_json
        self.image_dir = image_dir
        self.head_boxes = head_boxes
        self.bbox_scale = bbox_scale

    @property
    def name(self) -> str:
        return "mpii"

    def skeleton(self, root: Path) -> Skeleton:
        return MPII

    def paths(self) -> list[str]:
        named = (self.train_json, self.val_json, self.image_dir, self.head_boxes)
        return [p for p in named if p is not None]

    def read(self, root: Path) -> PoseAnnotations:
        train = _read_json(root / self.train_json, root / self.image_dir, self.bbox_scale)
        val = _read_json(root / self.val_json, root / self.image_dir, self.bbox_scale)
        n_train, n_val = len(train["paths"]), len(val["paths"])
        keypoints = np.concatenate([train["keypoints"], val["keypoints"]])  # (N, 16, 2)
        labelled = np.concatenate([train["labelled"], val["labelled"]])  # (N, 16)
        a, b = MPII.head
        segment = np.linalg.norm(keypoints[:, a] - keypoints[:, b], axis=-1)  # (N,)
        head_size = np.where(labelled[:, a] & labelled[:, b], segment, 0.0)
        if self.head_boxes is not None:
            head_size[n_train:] = self._head_box_sizes(root / self.head_boxes, n_val)
            choice = f"0.6 x head-box diagonal ({self.head_boxes}) on the {n_val} val people"
        else:
            choice = "the upper-neck to head-top segment (no head_boxes given)"
        rank_zero_info(f"mpii: {n_train} train and {n_val} val people; PCKh normaliser: {choice}")
        split = np.arange(n_train + n_val) < n_train
        return PoseAnnotations(
            skeleton=MPII,
            image_paths=train["paths"] + val["paths"],
            keypoints_px=keypoints,
            labelled=labelled,
            visible=labelled.copy(),
            box_px=np.concatenate([train["box"], val["box"]]),
            head_size_px=head_size.astype(np.float32),
            is_train=split,
            is_val=~split,
        )

    def _head_box_sizes(self, path: Path, n_val: int) -> np.ndarray:
        """0.6 x the diagonal of each validation person's head box, pixels (N,)."""
        import scipy.io

        require(path, "MPII head boxes", "mpii_gt_val.mat with headboxes_src (2, 2, N)")
        try:
            boxes = scipy.io.loadmat(path)["headboxes_src"]
        except Exception as err:  # scipy raises several types; a missing key is a KeyError
            raise DatasetError(f"{path}: cannot read 'headboxes_src' ({err!r})") from err
        if boxes.shape != (2, 2, n_val):
            raise DatasetError(
                f"{path}: 'headboxes_src' has shape {boxes.shape}, expected (2, 2, {n_val}) "
                f"for the {n_val} people of {self.val_json}"
            )
        corners = np.transpose(boxes, (2, 0, 1)).astype(np.float64)  # (N, corner, x/y)
        return HEAD_BOX_SCALE * np.linalg.norm(corners[:, 1] - corners[:, 0], axis=-1)


def _read_json(path: Path, image_dir: Path, bbox_scale: float) -> dict:
    require(path, "MPII annotations", MPII_LAYOUT)
    people = read_json(path, MPII_LAYOUT)
    if not isinstance(people, list):
        raise DatasetError(f"{path}: expected {MPII_LAYOUT}")
    k = MPII.num_joints
    keypoints = np.zeros((len(people), k, 2), dtype=np.float32)
    labelled = np.zeros((len(people), k), dtype=bool)
    box = np.zeros((len(people), 4), dtype=np.float32)
    paths = []
    for i, person in enumerate(people):
        where = f"{path}: person {i} (0-based)"
        missing = [
            f for f in ("image", "center", "scale", "joints", "joints_vis") if f not in person
        ]
        if missing:
            raise DatasetError(f"{where} lacks {missing}; expected {MPII_LAYOUT}")
        joints = np.asarray(person["joints"], dtype=np.float64)
        vis = np.asarray(person["joints_vis"], dtype=np.float64)
        if joints.shape != (k, 2) or vis.shape != (k,):
            raise DatasetError(
                f"{where}: joints {joints.shape} and joints_vis {vis.shape}; expected ({k}, 2) "
                f"and ({k},)"
            )
        if not np.isin(vis, (0, 1)).all():
            raise DatasetError(f"{where}: joints_vis {vis.tolist()}; expected 0 or 1")
        lab = vis == 1
        if not np.isfinite(joints[lab]).all():
            raise DatasetError(f"{where}: a labelled joint has a non-finite coordinate")
        centre, scale = np.asarray(person["center"], dtype=np.float64), float(person["scale"])
        if centre.shape != (2,) or centre[0] == -1 or not scale > 0:
            raise DatasetError(
                f"{where}: center {person['center']}, scale {scale}; expected a "
                "person centre and a scale > 0"
            )
        keypoints[i] = np.where(lab[:, None], joints - 1.0, 0.0)  # MATLAB 1-based -> ours
        labelled[i] = lab
        side = bbox_scale * 200.0 * scale
        box[i] = (centre[0] - 1.0, centre[1] + 15.0 * scale - 1.0, side, side)
        paths.append(image_dir / str(person["image"]))
    return {"paths": paths, "keypoints": keypoints, "labelled": labelled, "box": box}
