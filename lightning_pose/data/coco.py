"""COCO keypoint JSON (``person_keypoints_*.json``, as CVAT and Label Studio export): any skeleton.

Layout (Lin et al., ECCV 2014; https://cocodataset.org/#format-data): ``images`` (``id``,
``file_name``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` [x, y, w, h],
``keypoints`` K x (x, y, v), ``num_keypoints``, ``iscrowd``, ``area``), ``categories`` (``id``,
``name``, ``keypoints`` names, ``skeleton`` 1-based pairs).

Conventions, converted once here:

* **Pixels**: COCO's coordinates are continuous with 0 at the top-left *corner* of the image
  (as the COCO keypoint evaluation reads them); ours put 0 at the *centre* of the top-left
  pixel, so ``x_ours = x_coco - 0.5`` (and ``y``), for keypoints and boxes alike.
  (Detectron2 reads COCO keypoints the other way, as pixel indices; OKS and the metrics do not
  depend on the shift, the crop does by half a pixel.)
* **Flags**: ``v = 0`` not labelled, ``v = 1`` labelled but not visible, ``v = 2`` labelled and
  visible -> ``labelled = v > 0``, ``visible = v == 2``.
* **Instances**: one per annotation of the category with ``iscrowd`` 0 and at least one
  labelled keypoint; crowd annotations and annotations without a labelled keypoint are
  excluded and counted in the log. Any number of people per image.
* **Box**: the annotation's ``bbox``, made square (the network input is square) by growing its
  shorter side, then enlarged by ``bbox_scale`` (1.25 as in mmpose and HRNet, Sun et al. 2019).
  bbox-PCK's normaliser is ``max(w, h)`` of the annotated ``bbox`` itself (mmpose's
  ``PCKAccuracy(norm_item="bbox")``); OKS's scale is the annotation's ``area``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from lightning_pose.data.annotations import (
    DatasetError,
    PoseAnnotations,
    PoseReader,
    read_json,
    require,
)
from lightning_pose.data.skeleton import Limb, Skeleton, flip_pairs_from_names

COCO_LAYOUT = (
    "a COCO keypoint JSON file (images, annotations with bbox and keypoints K x (x, y, v), "
    "categories with keypoints and skeleton)"
)
# COCO's per-keypoint OKS constants for its 17-keypoint person category (pycocotools
# COCOeval.Params.setKpParams, kpt_oks_sigmas), in COCO keypoint order.
COCO_PERSON_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_PERSON_SIGMAS = tuple(
    s / 10.0
    for s in (
        0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
        0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
    )
)  # fmt: skip
# Constants for the two LSP joints COCO's person category lacks: CrowdPose's (Li et al., CVPR
# 2019; its evaluation code and mmpose's crowdpose.py) for its "head" (top) and "neck", 0.079,
# the shoulder's value; CrowdPose's authors state no derivation.
NECK_HEAD_TOP_SIGMAS = {"neck": 0.079, "head_top": 0.079}
KNOWN_SIGMAS = dict(zip(COCO_PERSON_KEYPOINTS, COCO_PERSON_SIGMAS, strict=True))
KNOWN_SIGMAS |= NECK_HEAD_TOP_SIGMAS
# The normaliser joints taken where a category has them and the config names none: PDJ's torso
# diameter (DeepPose §5) and the head segment of PCKh on LSP-style data.
DEFAULT_TORSO = ("left_shoulder", "right_hip")
DEFAULT_HEAD = ("neck", "head_top")
SIGMAS_KEY = "data.dataset.init_args.oks_sigmas"
# A category's own OKS constants (K values in keypoint order), as the converter writes them;
# not part of COCO's format, which pycocotools ignores.
CATEGORY_SIGMAS_KEY = "oks_sigmas"


def known_sigmas(names: tuple[str, ...]) -> list[float] | None:
    """OKS constants of joints named as COCO's person keypoints (pycocotools' own) and LSP's
    ``neck``/``head_top`` (CrowdPose's, see :data:`NECK_HEAD_TOP_SIGMAS`), in ``names``
    order; None where a name is neither."""
    if not all(n in KNOWN_SIGMAS for n in names):
        return None
    return [KNOWN_SIGMAS[n] for n in names]


def load_coco_json(path: Path) -> dict:
    """A COCO keypoint file's content, checked for its top-level lists.

    Raises:
        DatasetError: missing, not JSON, or without ``images``/``annotations``/``categories``.
    """
    require(path, "COCO keypoint file", COCO_LAYOUT)
    content = read_json(path, COCO_LAYOUT)
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a JSON object ({COCO_LAYOUT})")
    for key in ("images", "annotations", "categories"):
        if not isinstance(content.get(key), list):
            raise DatasetError(f"{path}: missing the list '{key}'; expected {COCO_LAYOUT}")
    return content


def _derived(given: list[str] | None, default: tuple[str, str], index: dict) -> list[str] | None:
    """The configured joint pair, else ``default`` where the skeleton has both joints."""
    if given is not None:
        return given
    return list(default) if all(name in index for name in default) else None


def _limb_name(a: str, b: str) -> str:
    """``left_knee``, ``left_ankle`` -> ``left_knee_ankle`` (so left and right limbs pool)."""
    for side in ("left_", "right_", "l_", "r_"):
        if a.startswith(side) and b.startswith(side):
            return f"{side}{a[len(side) :]}_{b[len(side) :]}"
    return f"{a}_{b}"


class COCOKeypoints(PoseReader):
    """A keypoint dataset in COCO keypoint JSON (see the module docstring for conventions).

    Args:
        train_json, val_json: the training and validation files (paths relative to the data
            root, or absolute).
        image_dir: folder of the training images (``file_name`` is relative to it).
        test_json: the test file; None = the validation file serves as test.
        val_image_dir, test_image_dir: their image folders; None = ``image_dir``.
        bbox_scale: the square box is ``bbox_scale`` x the longer side of ``bbox``.
        category_id: the category to read; None = the one category with keypoints.
        flip_pairs: joint name pairs ``[left, right]`` (``[]``: none); None = from the joint
            names (``left_``/``right_``, ``l_``/``r_``, ``_l``/``_r``, ``_L``/``_R``,
            ``Left``/``Right``: :func:`lightning_pose.data.skeleton.flip_pairs_from_names`);
            training with flips then refuses names that look lateral but found no partner.
        torso: two joint names for PDJ's torso diameter (DeepPose §5: left shoulder to right
            hip); None = ``[left_shoulder, right_hip]`` where the category has both joints,
            else no torso; ``[]`` = no torso. Without one PDJ is absent and bbox-PCK, OKS AP
            and PCP measure the skeleton.
        head: two joint names for PCKh's head segment; None = ``[neck, head_top]`` where the
            category has both, else no head (no PCKh); ``[]`` = no head.
        oks_sigmas: K OKS constants; None = the category's own ``oks_sigmas`` list where it
            has one (as ``lightning-pose convert`` writes), else COCO's own for
            its 17-keypoint person category, else an error.
        name: short name for logs and error messages.

    Raises:
        DatasetError: on reading: a file that is missing or malformed (naming the file and its
            first bad entry), an image id used by two ``images`` entries (naming every such
            id), a skeleton pair outside 1..K, an unknown joint name, or ``oks_sigmas``
            missing or of the wrong length.

    Warns:
        UserWarning: annotations whose ``bbox`` lies entirely outside their image (by the
            ``images`` entry's ``width``/``height``), naming the file and annotation ids; kept,
            and counted in the log line and in :attr:`boxes_outside` (per split).
    """

    def __init__(
        self,
        train_json: str,
        val_json: str,
        image_dir: str,
        test_json: str | None = None,
        val_image_dir: str | None = None,
        test_image_dir: str | None = None,
        bbox_scale: float = 1.25,
        category_id: int | None = None,
        flip_pairs: list[tuple[str, str]] | None = None,
        torso: list[str] | None = None,
        head: list[str] | None = None,
        oks_sigmas: list[float] | None = None,
        name: str = "coco",
    ) -> None:
        if bbox_scale <= 0:
            raise DatasetError(f"data.dataset.init_args.bbox_scale must be > 0, got {bbox_scale}")
        self.train_json = train_json
        self.val_json = val_json
        self.image_dir = image_dir
        self.test_json = test_json
        self.val_image_dir = val_image_dir
        self.test_image_dir = test_image_dir
        self.bbox_scale = bbox_scale
        self.category_id = category_id
        self.flip_pairs = None if flip_pairs is None else [list(p) for p in flip_pairs]
        self.torso = None if torso is None else list(torso)
        self.head = None if head is None else list(head)
        self.oks_sigmas = None if oks_sigmas is None else list(oks_sigmas)
        self._name = name
        self._files: dict[Path, dict] = {}
        # per split read: annotations whose bbox lies entirely outside their image (kept)
        self.boxes_outside: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    def paths(self) -> list[str]:
        named = (self.train_json, self.val_json, self.image_dir, self.test_json)
        named += (self.val_image_dir, self.test_image_dir)
        return [p for p in named if p is not None]

    def _load(self, path: Path) -> dict:
        if path not in self._files:
            self._files[path] = load_coco_json(path)
        return self._files[path]

    def _category(self, path: Path, content: dict) -> dict:
        with_keypoints = [c for c in content["categories"] if c.get("keypoints")]
        if self.category_id is not None:
            found = [c for c in content["categories"] if c.get("id") == self.category_id]
            if not found or not found[0].get("keypoints"):
                raise DatasetError(
                    f"{path}: no category with id {self.category_id} and a 'keypoints' list "
                    f"(data.dataset.init_args.category_id); categories with keypoints: "
                    f"{[c.get('id') for c in with_keypoints]}"
                )
            return found[0]
        if len(with_keypoints) != 1:
            raise DatasetError(
                f"{path}: expected exactly one category with a 'keypoints' list, found "
                f"{len(with_keypoints)} ({[c.get('id') for c in with_keypoints]}); set "
                "data.dataset.init_args.category_id"
            )
        return with_keypoints[0]

    def skeleton(self, root: Path) -> Skeleton:
        """The skeleton of the training file's category (names, limbs, flip pairs, OKS)."""
        path = root / self.train_json
        category = self._category(path, self._load(path))
        return self._skeleton(path, category)

    def _skeleton(self, path: Path, category: dict) -> Skeleton:
        names = tuple(str(n) for n in category["keypoints"])
        k = len(names)
        index = {n: i for i, n in enumerate(names)}

        def joints(key: str, pair: list[str] | None) -> tuple[int, int] | None:
            if pair is None or len(pair) == 0:
                return None
            unknown = [n for n in pair if n not in index]
            if len(pair) != 2 or unknown:
                raise DatasetError(
                    f"data.dataset.init_args.{key}: expected two joint names of {path}'s "
                    f"category {category.get('name')!r} ({', '.join(names)}), got {pair}"
                )
            return index[pair[0]], index[pair[1]]

        limbs = []
        for pair in category.get("skeleton") or []:
            if len(pair) != 2 or not all(isinstance(j, int) and 1 <= j <= k for j in pair):
                raise DatasetError(
                    f"{path}: category {category.get('name')!r} has skeleton pair {pair}; "
                    f"expected two 1-based joint indices in 1..{k}"
                )
            a, b = pair[0] - 1, pair[1] - 1
            limbs.append(Limb(_limb_name(names[a], names[b]), (a,), (b,)))
        if self.flip_pairs is None:
            flips = flip_pairs_from_names(names)
        else:
            flips = tuple(joints("flip_pairs", p) for p in self.flip_pairs)  # type: ignore[misc]
        sigmas, source = self.oks_sigmas, SIGMAS_KEY
        if sigmas is None and CATEGORY_SIGMAS_KEY in category:
            sigmas, source = (
                category[CATEGORY_SIGMAS_KEY],
                f"{path}: the category's '{CATEGORY_SIGMAS_KEY}'",
            )
            if not isinstance(sigmas, list) or not all(
                isinstance(v, int | float) and v > 0 for v in sigmas
            ):
                raise DatasetError(f"{source} is {sigmas!r}; expected a list of {k} numbers > 0")
        if sigmas is None and names == COCO_PERSON_KEYPOINTS:
            sigmas = list(COCO_PERSON_SIGMAS)
        if sigmas is None or len(sigmas) != k:
            got = "missing" if sigmas is None else f"{len(sigmas)} values"
            raise DatasetError(
                f"{source}: {got}; expected {k} per-keypoint OKS constants for {path}'s "
                f"category {category.get('name')!r} ({', '.join(names)}), in the config "
                f"({SIGMAS_KEY}) or the category ('{CATEGORY_SIGMAS_KEY}'). COCO's own are "
                "used only for its 17-keypoint person category"
            )
        return Skeleton(
            name=str(category.get("name", self.name)),
            joints=names,
            flip_pairs=flips,
            torso=joints("torso", _derived(self.torso, DEFAULT_TORSO, index)),
            head=joints("head", _derived(self.head, DEFAULT_HEAD, index)),
            limbs=tuple(limbs),
            oks_sigmas=tuple(sigmas),
            category_id=category["id"],  # COCO results carry it (predictions_coco.json)
            flip_pairs_derived=self.flip_pairs is None,
        )

    def read(self, root: Path) -> PoseAnnotations:
        """Every instance of the train, val (and test) files, in file order, split-flagged.

        Raises:
            DatasetError: see the class docstring.
        """
        skeleton = self.skeleton(root)
        image_dir = self.image_dir
        val_dir = self.val_image_dir or image_dir
        files = [("train", self.train_json, image_dir), ("val", self.val_json, val_dir)]
        if self.test_json is not None:
            files.append(("test", self.test_json, self.test_image_dir or val_dir))
        parts = [
            self._read_file(root, split, name, folder, skeleton) for split, name, folder in files
        ]
        splits = np.concatenate(
            [np.full(len(p["paths"]), f[0]) for f, p in zip(files, parts, strict=True)]
        )
        return PoseAnnotations(
            skeleton=skeleton,
            image_paths=[path for p in parts for path in p["paths"]],
            keypoints_px=np.concatenate([p["keypoints_px"] for p in parts]),
            labelled=np.concatenate([p["labelled"] for p in parts]),
            visible=np.concatenate([p["visible"] for p in parts]),
            box_px=np.concatenate([p["box_px"] for p in parts]),
            bbox_size_px=np.concatenate([p["bbox_size_px"] for p in parts]),
            area_px2=np.concatenate([p["area_px2"] for p in parts]),
            image_ids=np.concatenate([p["image_ids"] for p in parts]),
            is_train=splits == "train",
            is_val=splits == "val",
            is_test=None if self.test_json is None else splits == "test",
        )

    def _read_file(
        self, root: Path, split: str, name: str, folder: str, skeleton: Skeleton
    ) -> dict:
        path = root / name
        content = self._load(path)
        category = self._category(path, content)
        if tuple(category["keypoints"]) != skeleton.joints:
            raise DatasetError(
                f"{path}: category keypoints {category['keypoints']} differ from the training "
                f"file's {list(skeleton.joints)}; expected one skeleton in every split"
            )
        k = skeleton.num_joints
        images = _images(path, content["images"])
        rows, crowd, unlabelled = [], 0, 0
        for ann in content["annotations"]:
            if ann.get("category_id") != category["id"]:
                continue
            rows.append(_instance(path, ann, images, k))
            if ann.get("iscrowd", 0):
                crowd += 1
                rows.pop()
            elif not (rows[-1][0][:, 2] > 0).any():
                unlabelled += 1
                rows.pop()
        outside = [r for r in rows if _box_outside(r[1], images[r[2]])]
        if outside:
            listed = ", ".join(f"{r[4]} (image_id {r[2]})" for r in outside[:5])
            rank_zero_warn(
                f"{path}: {len(outside)} annotation(s) have a 'bbox' entirely outside their "
                f"image (its width x height), so their crops hold no pixel of the image: "
                f"annotation id {listed}{', ...' if len(outside) > 5 else ''}. Kept; check "
                "the boxes (COCO's bbox is [x, y, w, h] from the image's top-left corner)"
            )
        rank_zero_info(
            f"{self.name} {split} ({path.name}): {len(rows)} instances in "
            f"{len({r[2] for r in rows})} images; excluded {crowd} crowd annotations and "
            f"{unlabelled} without a labelled keypoint; {len(outside)} boxes entirely outside "
            "their image"
        )
        self.boxes_outside[split] = len(outside)
        kp = np.array([r[0] for r in rows], dtype=np.float64).reshape(len(rows), k, 3)
        bbox = np.array([r[1] for r in rows], dtype=np.float64).reshape(len(rows), 4)
        side = np.maximum(bbox[:, 2], bbox[:, 3])  # (N,) the longer side, pixels
        centre = bbox[:, :2] + bbox[:, 2:] / 2 - 0.5  # (N, 2) COCO corner frame -> ours
        box_side = self.bbox_scale * side
        return {
            "paths": [root / folder / images[r[2]]["file_name"] for r in rows],
            # COCO frame -> ours; unlabelled joints stay at 0
            "keypoints_px": np.where(kp[..., 2:] > 0, kp[..., :2] - 0.5, 0.0).astype(np.float32),
            "labelled": kp[..., 2] > 0,
            "visible": kp[..., 2] == 2,
            "box_px": np.column_stack([centre, box_side, box_side]).astype(np.float32),
            "bbox_size_px": side.astype(np.float32),
            "area_px2": np.array([r[3] for r in rows], dtype=np.float32),
            "image_ids": np.array([r[2] for r in rows], dtype=np.int64),
        }


def _images(path: Path, entries: list) -> dict:
    """``{id: image entry}`` of a file's ``images`` list, checked.

    Raises:
        DatasetError: an entry without ``id`` or ``file_name``, or ids used by more than one
            entry (an annotation would be cropped from whichever image came last), naming
            the file and every repeated id.
    """
    images: dict = {}
    repeated: dict = {}
    for image in entries:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DatasetError(f"{path}: image entry {image} lacks 'id' or 'file_name'")
        if image["id"] in images:
            repeated.setdefault(image["id"], [images[image["id"]]["file_name"]])
            repeated[image["id"]].append(image["file_name"])
        images[image["id"]] = image
    if repeated:
        listed = "; ".join(f"id {i}: {', '.join(map(str, n))}" for i, n in repeated.items())
        raise DatasetError(
            f"{path}: {len(repeated)} image id(s) used by more than one 'images' entry "
            f"({listed}); expected each image id once"
        )
    return images


def _box_outside(bbox: list, image: dict) -> bool:
    """Whether the COCO ``bbox`` ``[x, y, w, h]`` (corner frame) lies entirely outside the
    image, by the entry's ``width`` and ``height``; False where the entry lacks them (COCO's
    ``images`` carry them; the reader does not open image files)."""
    width, height = image.get("width"), image.get("height")
    if not isinstance(width, int | float) or not isinstance(height, int | float):
        return False
    x, y, w, h = bbox
    return x >= width or y >= height or x + w <= 0 or y + h <= 0


def _instance(path: Path, ann: dict, images: dict, k: int) -> tuple:
    """``(keypoints (K, 3), bbox (4,), image_id, area, annotation id)`` of one annotation,
    checked.

    Raises:
        DatasetError: naming the file and the annotation (its ``id``).
    """
    where = f"{path}: annotation id {ann.get('id')} (image_id {ann.get('image_id')})"
    if ann.get("image_id") not in images:
        raise DatasetError(f"{where}: its image_id is not in 'images'")
    keypoints = ann.get("keypoints")
    if not isinstance(keypoints, list) or len(keypoints) != 3 * k:
        got = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        raise DatasetError(f"{where}: 'keypoints' has {got} values, expected 3 x {k} (x, y, v)")
    kp = np.asarray(keypoints, dtype=np.float64).reshape(k, 3)
    bad_v = ~np.isin(kp[:, 2], (0, 1, 2))
    if bad_v.any():
        raise DatasetError(f"{where}: visibility flag {kp[bad_v][0, 2]:g}; expected 0, 1 or 2")
    labelled = kp[:, 2] > 0
    if not np.isfinite(kp[labelled, :2]).all():
        raise DatasetError(f"{where}: a labelled keypoint has a non-finite coordinate")
    kp[~labelled, :2] = 0.0
    bbox = ann.get("bbox")
    if ann.get("iscrowd", 0) or not labelled.any():
        return kp, [0.0, 0.0, 0.0, 0.0], ann["image_id"], 0.0, ann.get("id")
    if not isinstance(bbox, list) or len(bbox) != 4 or not np.isfinite(bbox).all():
        raise DatasetError(f"{where}: 'bbox' is {bbox}; expected [x, y, w, h], finite")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise DatasetError(f"{where}: 'bbox' {bbox} has a width or height <= 0")
    area = float(ann.get("area", bbox[2] * bbox[3]))  # COCOeval.loadRes uses w x h likewise
    return kp, bbox, ann["image_id"], area, ann.get("id")
