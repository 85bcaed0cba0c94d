"""Baseline for the LSPet table: predict the mean training pose (box-normalised) for every
validation image, scored with the same PDJ/PCKh code. Anything a model learns shows up as the
margin over this. Usage: .venv/bin/python bench/mean_pose_baseline.py [data root]"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_pose import codec
from lightning_pose.data.datamodule import resolve_data_root, split_indices
from lightning_pose.data.dataset import segment_length
from lightning_pose.data.readers import read_lspet
from lightning_pose.metrics import PDJ, PCKh


def main() -> None:
    root = resolve_data_root(sys.argv[1] if len(sys.argv) > 1 else None)
    ann = read_lspet(Path(root) / "lspet")
    splits = split_indices(ann, val_every=10)
    sizes = np.array([Image.open(p).size for p in ann.image_paths], dtype=np.float32)  # (N, 2)
    boxes = np.stack([codec.whole_image_box(w, h) for w, h in sizes])  # (N, 4)
    norm = codec.encode(ann.keypoints_px, boxes)  # (N, K, 2)
    train, val = splits["train"], splits["val"]
    vis = ann.visible
    mean_pose = np.stack(
        [norm[train][vis[train][:, k], k].mean(0) for k in range(norm.shape[1])]
    )  # (K, 2)
    pred_px = codec.decode(np.broadcast_to(mean_pose, norm[val].shape), boxes[val])
    skeleton = ann.skeleton
    torso = [segment_length(ann.keypoints_px[i], vis[i], skeleton.torso) for i in val]
    head = [segment_length(ann.keypoints_px[i], vis[i], skeleton.head) for i in val]
    groups = skeleton.groups()
    args = (torch.tensor(pred_px), torch.tensor(ann.keypoints_px[val]), torch.tensor(vis[val]))
    pdj = PDJ(skeleton.joints, groups=groups)
    pdj.update(*args, torch.tensor(torso))
    pckh = PCKh(skeleton.joints, groups=groups)
    pckh.update(*args, torch.tensor(head))
    results = {**pdj.compute(), **pckh.compute()}
    for key in ("pdj@0.05", "pdj@0.1", "pdj@0.2", "pckh@0.5"):
        print(f"mean-pose baseline {key}: {100 * float(results[key]):.1f}")


if __name__ == "__main__":
    main()
