"""Baseline for the LSPet table: predict the mean training pose (box-normalised) for every
validation image, scored with the same metrics as every model (``StageMetrics``). Anything a
model learns shows up as the margin over this.
Usage: .venv/bin/python bench/mean_pose_baseline.py [data root]"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_pose.codecs.box import decode, encode, whole_image_box
from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.datamodule import resolve_data_root, split_indices
from lightning_pose.data.readers import read_lspet
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics


def main() -> None:
    root = resolve_data_root(sys.argv[1] if len(sys.argv) > 1 else None)
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
    results = metrics.compute()
    for key in ("pdj@0.05", "pdj@0.1", "pdj@0.2", "pckh@0.5", "pcp@0.5"):
        print(f"mean-pose baseline {key}: {100 * float(results[key]):.1f}")


if __name__ == "__main__":
    main()
