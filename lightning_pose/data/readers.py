"""Readers for the official annotation layouts of LSPet, LSP and FLIC, and a folder of images.

Every reader returns :class:`PoseAnnotations` in one convention: 0-based pixel coordinates
(MATLAB's 1-based coordinates minus 1), ``labelled`` and ``visible`` as bool, never NaN inside
the arrays. *Labelled* means the annotation gives the joint's position (it is scored and
trained on); *visible* means it is also not occluded. LSP marks occluded joints that are still
labelled (the LSP protocols score all 14 joints); LSPet marks unlabelled joints with
placeholders such as (0, -26), so there the two agree.
Each raises a :class:`DatasetError` that names the file and the expected layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from lightning_pose.codecs.box import torso_box_to_person_box
from lightning_pose.data.annotations import DatasetError, PoseAnnotations, PoseReader, require
from lightning_pose.data.skeleton import FLIC_COORD_INDICES, FLIC_SKELETON, LSP_SKELETON, Skeleton

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
__all__ = ["FLIC", "LSP", "DatasetError", "LSPet", "PoseAnnotations", "list_images"]


@dataclass
class _Names:
    """What error messages name: image file names (N) and joint names (K)."""

    image_names: list[str]
    joint_names: tuple[str, ...]


def _load_mat(path: Path, key: str) -> np.ndarray:
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for corrupt files
        raise DatasetError(f"{path}: cannot be read as a MATLAB .mat file ({err})") from err
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetError(f"{path}: expected a variable '{key}', found {keys}")
    return mat[key]


def _read_joints(
    directory: Path, name: str, layout: str, leading: tuple[int, int], axes: str
) -> np.ndarray:
    """``joints.mat``'s ``joints`` array, checked to have shape ``(*leading, N)``, float32."""
    mat_path = require(directory / "joints.mat", f"{name} annotations", layout)
    joints = _load_mat(mat_path, "joints")
    if joints.ndim != 3 or joints.shape[:2] != leading:
        raise DatasetError(
            f"{mat_path}: 'joints' has shape {joints.shape}, expected ({leading[0]}, "
            f"{leading[1]}, N) for {name} {axes}"
        )
    return joints.astype(np.float32)


def _finite(path: Path, keypoints: np.ndarray, labelled: np.ndarray, ann: _Names) -> np.ndarray:
    """``keypoints (N, K, 2)`` with unlabelled joints' non-finite values set to 0.

    Raises:
        DatasetError: a labelled joint has a NaN or infinite coordinate (names the example,
            0-based, its image file and the joint); a NaN there would reach the loss and the
            metrics.
    """
    finite = np.isfinite(keypoints).all(axis=-1)  # (N, K)
    bad = np.argwhere(labelled & ~finite)
    if len(bad):
        n, k = (int(v) for v in bad[0])
        raise DatasetError(
            f"{path}: example {n} (0-based; image {ann.image_names[n]}) has a non-finite "
            f"coordinate {keypoints[n, k].tolist()} on labelled joint {k} "
            f"({ann.joint_names[k]}); {len(bad)} such joints in all. Expected finite pixel "
            "coordinates on every labelled joint"
        )
    return np.where(finite[..., None], keypoints, 0.0).astype(np.float32)


def _flags(path: Path, flags: np.ndarray, ann: _Names) -> None:
    """Check that the visibility flags ``(N, K)`` are 0 or 1 (a NaN flag would silently read
    as "not labelled").

    Raises:
        DatasetError: naming the first example (0-based, and its image) and joint with another
            value.
    """
    bad = np.argwhere((flags != 0) & (flags != 1))
    if len(bad):
        n, k = (int(v) for v in bad[0])
        raise DatasetError(
            f"{path}: example {n} (0-based; image {ann.image_names[n]}) has visibility flag "
            f"{flags[n, k]} on joint {k} ({ann.joint_names[k]}); {len(bad)} such flags in "
            "all. Expected 0 or 1"
        )


LSPET_LAYOUT = "lspet/joints.mat (key 'joints', shape (14, 3, N)) and lspet/images/im00001.jpg ..."
LSP_LAYOUT = "lsp/joints.mat (key 'joints', shape (3, 14, 2000)) and lsp/images/im0001.jpg ..."
FLIC_LAYOUT = "flic/examples.mat (struct array 'examples') and flic/images/<filepath>"


def read_lspet(directory: Path) -> PoseAnnotations:
    """LSPet (Johnson & Everingham, CVPR 2011): ``joints.mat`` (14, 3, N) = (joint, x/y/flag,
    image), flag 1 = visible; images ``images/im%05d.jpg``. A joint that is not visible is a
    placeholder (e.g. (0, -26)) or lies outside the image, so ``labelled = visible``.

    Raises:
        DatasetError: the file is missing, unreadable, not of shape (14, 3, N), has a flag
            other than 0 or 1, or a visible joint's coordinate is not finite (the real file
            has no NaN: its unlabelled joints are zeros or negative placeholders).
    """
    joints = _read_joints(directory, "LSPet", LSPET_LAYOUT, (14, 3), "(joint, x/y/flag, image)")
    joints = np.transpose(joints, (2, 0, 1))  # (N, 14, 3)
    n = joints.shape[0]
    paths = [directory / "images" / f"im{i + 1:05d}.jpg" for i in range(n)]
    names = _Names([p.name for p in paths], LSP_SKELETON.joints)
    _flags(directory / "joints.mat", joints[..., 2], names)
    labelled = joints[..., 2] == 1
    keypoints = joints[..., :2] - 1.0  # MATLAB 1-based -> 0-based pixel centres
    return PoseAnnotations(
        skeleton=LSP_SKELETON,
        image_paths=paths,
        keypoints_px=_finite(directory / "joints.mat", keypoints, labelled, names),
        labelled=labelled,
        visible=joints[..., 2] == 1,
    )


def read_lsp(directory: Path) -> PoseAnnotations:
    """LSP (Johnson & Everingham, BMVC 2010): ``joints.mat`` (3, 14, 2000) = (x/y/flag, joint,
    image) with the flag *inverted* (0 = visible, 1 = occluded); images ``images/im%04d.jpg``.
    Official split: images 1-1000 train, 1001-2000 test. Occluded joints are still labelled
    (their positions are annotated, and the LSP protocols score all 14 joints): every joint
    is ``labelled``.

    Raises:
        DatasetError: the file is missing, unreadable, not of shape (3, 14, N), has a flag
            other than 0 or 1, or a joint's coordinate is not finite (every joint is labelled).
    """
    joints = _read_joints(directory, "LSP", LSP_LAYOUT, (3, 14), "(x/y/flag, joint, image)")
    joints = np.transpose(joints, (2, 1, 0))  # (N, 14, 3)
    n = joints.shape[0]
    paths = [directory / "images" / f"im{i + 1:04d}.jpg" for i in range(n)]
    names = _Names([p.name for p in paths], LSP_SKELETON.joints)
    _flags(directory / "joints.mat", joints[..., 2], names)
    labelled = np.ones((n, 14), dtype=bool)
    index = np.arange(n)
    return PoseAnnotations(
        skeleton=LSP_SKELETON,
        image_paths=paths,
        keypoints_px=_finite(directory / "joints.mat", joints[..., :2] - 1.0, labelled, names),
        labelled=labelled,
        visible=joints[..., 2] == 0,
        is_train=index < 1000,
        is_test=index >= 1000,
    )


def read_flic(directory: Path, torso_box_scale: float = 3.0) -> PoseAnnotations:
    """FLIC (Sapp & Taskar, CVPR 2013): ``examples.mat`` with fields ``coords`` (2, 29),
    ``filepath``, ``torsobox`` (x1, y1, x2, y2), ``istrain``, ``istest``. Keeps the 11 joints
    labelled in every example (:data:`lightning_pose.data.skeleton.FLIC_SKELETON`); all are
    labelled and visible.
    The box is a square centred on the official ``torsobox``, side ``torso_box_scale`` x its
    height (``codecs.box.torso_box_to_person_box``): the standard FLIC protocol of starting
    from the torso detection, never from the ground-truth joints.

    Raises:
        DatasetError: the file is missing, unreadable, lacks a field, or a labelled joint is NaN.
    """
    mat_path = require(directory / "examples.mat", "FLIC annotations", FLIC_LAYOUT)
    examples = _load_mat(mat_path, "examples").ravel()
    needed = ("coords", "filepath", "torsobox", "istrain", "istest")
    names = examples.dtype.names or ()
    missing = [f for f in needed if f not in names]
    if missing:
        raise DatasetError(f"{mat_path}: 'examples' lacks fields {missing}; has {list(names)}")
    coords = np.stack([np.asarray(e["coords"], dtype=np.float32) for e in examples])
    if coords.shape[1:] != (2, 29):
        raise DatasetError(f"{mat_path}: 'coords' has shape {coords.shape[1:]}, expected (2, 29)")
    keypoints = np.transpose(coords[:, :, list(FLIC_COORD_INDICES)], (0, 2, 1)) - 1.0
    paths = [directory / "images" / str(e["filepath"].item()) for e in examples]
    names = _Names([p.name for p in paths], FLIC_SKELETON.joints)
    keypoints = _finite(mat_path, keypoints, np.ones(keypoints.shape[:2], dtype=bool), names)
    torsobox = np.stack([np.asarray(e["torsobox"], np.float32).ravel() for e in examples]) - 1.0
    return PoseAnnotations(
        skeleton=FLIC_SKELETON,
        image_paths=paths,
        keypoints_px=keypoints,
        labelled=np.ones(keypoints.shape[:2], dtype=bool),
        visible=np.ones(keypoints.shape[:2], dtype=bool),
        box_px=torso_box_to_person_box(torsobox, torso_box_scale),
        is_train=np.array([bool(e["istrain"].item()) for e in examples]),
        is_test=np.array([bool(e["istest"].item()) for e in examples]),
    )


def list_images(directory: Path, key: str = "data.predict.image_dir") -> list[Path]:
    """Image files of a folder (no annotations), sorted by name, for ``predict``.

    Args:
        directory: the folder.
        key: the config key that named it, for error messages.

    Raises:
        DatasetError: the folder does not exist or holds no image.
    """
    if not directory.is_dir():
        raise DatasetError(
            f"{key}: the folder of images to predict, {directory.resolve()}, does not exist; "
            f"expected a folder of {'/'.join(IMAGE_SUFFIXES)} images"
        )
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DatasetError(f"{key}: {directory}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return paths


class LSPet(PoseReader):
    """LSPet in its official layout (see :func:`read_lspet`); the box is the whole image.

    Args:
        folder: the dataset folder under the data root.
    """

    def __init__(self, folder: str = "lspet") -> None:
        self.folder = folder

    @property
    def name(self) -> str:
        return "lspet"

    def read(self, root: Path) -> PoseAnnotations:
        return read_lspet(root / self.folder)

    def skeleton(self, root: Path) -> Skeleton:
        return LSP_SKELETON

    def paths(self) -> list[str]:
        return [self.folder]


class LSP(PoseReader):
    """LSP in its official layout (see :func:`read_lsp`); the box is the whole image.

    Args:
        folder: the dataset folder under the data root.
    """

    def __init__(self, folder: str = "lsp") -> None:
        self.folder = folder

    @property
    def name(self) -> str:
        return "lsp"

    def read(self, root: Path) -> PoseAnnotations:
        return read_lsp(root / self.folder)

    def skeleton(self, root: Path) -> Skeleton:
        return LSP_SKELETON

    def paths(self) -> list[str]:
        return [self.folder]


class FLIC(PoseReader):
    """FLIC in its official layout (see :func:`read_flic`); the box is a square around the
    official torso box.

    Args:
        folder: the dataset folder under the data root.
        torso_box_scale: box side as a multiple of the torso-box height (3.0 holds 99.9 % of
            the labelled FLIC joints, measured on the official ``examples.mat``).
    """

    def __init__(self, folder: str = "flic", torso_box_scale: float = 3.0) -> None:
        self.folder = folder
        self.torso_box_scale = torso_box_scale

    @property
    def name(self) -> str:
        return "flic"

    def read(self, root: Path) -> PoseAnnotations:
        return read_flic(root / self.folder, self.torso_box_scale)

    def skeleton(self, root: Path) -> Skeleton:
        return FLIC_SKELETON

    def paths(self) -> list[str]:
        return [self.folder]
