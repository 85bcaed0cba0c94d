"""Write LSPet, LSP or FLIC as COCO keypoint JSON (for CVAT, MMPose, or our COCO reader)::

    lightning-pose convert lspet ../shared/data lspet_coco.json [--max-samples N]

What is written (read back with ``lightning_pose.data.COCOKeypoints(..., bbox_scale=1.0,
image_dir=<the dataset's images folder>)``, it gives the reader's own samples; it trains and
validates with ``conf/coco_mini.yaml`` and no further option):

* ``images``: one per image file (FLIC frames with several people once), ``file_name``
  relative to the dataset's ``images/`` folder, ``width``/``height`` as decoded.
* ``annotations``: one per instance. ``keypoints`` in COCO's corner frame (``x + 0.5``):
  ``v = 2`` labelled and visible, ``1`` labelled and occluded (LSP), ``0`` not labelled
  (written as 0, 0, 0). ``bbox``: the box the reader crops from (LSP/LSPet: the whole image
  padded to a square, centred; FLIC: the square around the torso box), so that
  ``bbox_scale: 1.0`` gives the same crop. ``area``: the area of the labelled keypoints' tight
  box (these datasets have no segmentation; COCO's ``area`` is the segment's area), the scale
  OKS uses. ``iscrowd`` 0.
* ``categories``: one, ``person`` (id 1), with its joint names, its single-joint limbs as
  1-based ``skeleton`` pairs (LSP's torso stick, from the hip midpoint to the shoulder
  midpoint, has no COCO form and is left out) and ``oks_sigmas``, the per-joint OKS constants
  in keypoint order, which the COCO reader reads (pycocotools ignores the field): COCO's own
  for the joints COCO's person category has (ankles, knees, hips, wrists, elbows, shoulders,
  eyes, nose; pycocotools' ``kpt_oks_sigmas``) and, for LSP's neck and head top, which it
  lacks, CrowdPose's 0.079 (Li et al., CVPR 2019: its "neck" and "head", the shoulder's
  value; :data:`lightning_pose.data.coco.NECK_HEAD_TOP_SIGMAS`).

Splits are not written: one file holds every instance in file order (``--max-samples``: the
first N images' instances).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lightning_pose.data.annotations import PoseAnnotations, PoseReader
from lightning_pose.data.coco import CATEGORY_SIGMAS_KEY, known_sigmas
from lightning_pose.data.dataset import load_image
from lightning_pose.data.readers import FLIC, LSP, LSPet

READERS: dict[str, PoseReader] = {"lspet": LSPet(), "lsp": LSP(), "flic": FLIC()}


def to_coco(annotations: PoseAnnotations, max_images: int | None = None) -> dict:
    """COCO keypoint JSON content of ``annotations`` (see the module docstring).

    Raises:
        FileNotFoundError, ValueError: an image that cannot be decoded (its size is needed
            for the whole-image box and ``width``/``height``); a joint without known OKS
            constants (:func:`lightning_pose.data.coco.known_sigmas`).
    """
    skeleton = annotations.skeleton
    sigmas = known_sigmas(skeleton.joints)
    if sigmas is None:
        raise ValueError(
            f"no OKS constants known for the joints of {skeleton.name!r} "
            f"({', '.join(skeleton.joints)}); expected COCO person or LSP joint names"
        )
    images: dict[Path, dict] = {}
    out_annotations = []
    for i, path in enumerate(annotations.image_paths):
        if path not in images:
            if max_images is not None and len(images) == max_images:
                break
            height, width = load_image(path).shape[:2]
            images[path] = {"id": len(images) + 1, "file_name": path.name}
            images[path] |= {"width": width, "height": height}
        image = images[path]
        if annotations.box_px is None:  # the whole image padded to a square, centred
            side = float(max(image["width"], image["height"]))
            cx, cy = (image["width"] - 1) / 2, (image["height"] - 1) / 2
        else:
            cx, cy, side, _ = (float(v) for v in annotations.box_px[i])
        labelled, visible = annotations.labelled[i], annotations.visible[i]  # (K,)
        xy = annotations.keypoints_px[i].astype(np.float64) + 0.5  # ours -> COCO's corner frame
        v = np.where(labelled, np.where(visible, 2, 1), 0)  # (K,)
        xy[~labelled] = 0.0
        tight = xy[labelled]
        extent = tight.max(0) - tight.min(0) if len(tight) else np.zeros(2)
        out_annotations.append(
            {
                "id": i + 1,
                "image_id": image["id"],
                "category_id": 1,
                "iscrowd": 0,
                "num_keypoints": int(labelled.sum()),
                "keypoints": np.column_stack([xy, v]).ravel().tolist(),
                # corner of the square box in COCO's frame: centre + 0.5 - side / 2
                "bbox": [cx + 0.5 - side / 2, cy + 0.5 - side / 2, side, side],
                "area": float(max(extent[0] * extent[1], 1.0)),
            }
        )
    pairs = [
        [limb.start[0] + 1, limb.end[0] + 1]
        for limb in skeleton.limbs
        if len(limb.start) == 1 and len(limb.end) == 1
    ]
    category = {"id": 1, "name": "person", "supercategory": "person"}
    category |= {"keypoints": list(skeleton.joints), "skeleton": pairs}
    category[CATEGORY_SIGMAS_KEY] = [round(v, 6) for v in sigmas]
    return {
        "info": {"description": f"{skeleton.name} converted by lightning_pose.data.convert"},
        "images": list(images.values()),
        "annotations": out_annotations,
        "categories": [category],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's arguments. Raises SystemExit (argparse's message) on bad ones."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose convert", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dataset", choices=sorted(READERS))
    parser.add_argument("root", type=Path, help="the data root holding lspet/, lsp/ or flic/")
    parser.add_argument("out", type=Path, help="the COCO keypoint JSON file to write")
    parser.add_argument("--max-samples", type=int, default=None, help="first N images only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """``lightning-pose convert DATASET ROOT OUT.json [--max-samples N]``: read the dataset,
    write its COCO keypoint JSON (:func:`to_coco`), print what was written."""
    args = parse_args(argv)
    annotations = READERS[args.dataset].read(args.root)
    content = to_coco(annotations, args.max_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(content))
    folder = annotations.image_paths[0].parent
    print(
        f"wrote {args.out}: {len(content['annotations'])} instances in "
        f"{len(content['images'])} images; images: {folder} (COCOKeypoints image_dir; "
        "bbox_scale: 1.0 gives the same crops)"
    )
