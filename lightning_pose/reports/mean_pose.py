"""``lightning-pose report mean-pose``: the floor of the LSPet table. Predict the mean training
pose (box-normalised, DeepPose Eq. 1, in the whole-image box the reader crops) for every
validation image, scored with the same metrics as every model (``StageMetrics``). Anything a
model learns shows up as the margin over this.

Usage: ``lightning-pose report mean-pose [DATA_ROOT]`` (the data root as ``data.root``
resolves it: :func:`lightning_pose.data.datamodule.resolve_data_root`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_pose.codecs.box import decode, encode, whole_image_box
from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.datamodule import resolve_data_root, split_indices
from lightning_pose.data.readers import read_lspet
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics

KEYS = ("pdj@0.05", "pdj@0.1", "pdj@0.2", "pckh@0.5", "pcp@0.5")


def mean_pose_metrics(root: Path) -> dict[str, float]:
    """The metrics (``StageMetrics.compute()``, fractions in [0, 1]) of the mean training pose
    on LSPet's validation split (every 10th image) under the data root ``root``.

    Raises:
        DatasetError, FileNotFoundError: LSPet's annotations or images are missing.
    """
    ann = read_lspet(Path(root) / "lspet")
    splits = split_indices(ann, val_every=10)
    sizes = np.array([Image.open(p).size for p in ann.image_paths], dtype=np.float32)  # (N, 2)
    boxes = np.stack([whole_image_box(w, h) for w, h in sizes])  # (N, 4)
    norm = encode(ann.keypoints_px, boxes)  # (N, K, 2)
    train, val = splits["train"], splits["val"]
    lab = ann.labelled
    mean_pose = np.stack(
        [norm[train][lab[train][:, k], k].mean(0) for k in range(norm.shape[1])]
    )  # (K, 2)
    pred_px = decode(np.broadcast_to(mean_pose, norm[val].shape), boxes[val])
    skeleton = ann.skeleton
    keypoints = torch.from_numpy(ann.keypoints_px[val])
    labelled = torch.from_numpy(lab[val])
    batch = {
        "keypoints_px": keypoints,
        "labelled": labelled,
        "torso_diameter_px": segment_lengths(keypoints, labelled, skeleton.torso),
        "head_size_px": segment_lengths(keypoints, labelled, skeleton.head),
    }
    metrics = StageMetrics(skeleton, EvaluationProtocol())
    metrics.update(torch.from_numpy(pred_px.astype(np.float32)), batch)
    return {k: float(v) for k, v in metrics.compute().items()}


def main(argv: list[str] | None = None) -> str:
    """Print the baseline's :data:`KEYS` in percent, one a line (stdout), and return the text."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose report mean-pose", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("root", nargs="?", help="the data root (default: as data.root)")
    results = mean_pose_metrics(resolve_data_root(parser.parse_args(argv).root))
    text = "".join(f"mean-pose baseline {key}: {100 * results[key]:.1f}\n" for key in KEYS)
    print(text, end="")
    return text
