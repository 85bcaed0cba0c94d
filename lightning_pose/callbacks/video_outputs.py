"""What ``predict --data.predict.video=clip.mp4`` writes: per-frame keypoints in
``predictions.npz`` and ``predictions.csv``, and optionally ``overlay.mp4`` with the skeleton
drawn on every frame."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from lightning_pose.data.skeleton import Skeleton
from lightning_pose.data.video import VideoInfo, read_frames
from lightning_pose.plots.pose import draw_skeleton
from lightning_pose.runtime.files import new_file_mode, write_bytes_atomic

SCORER = "lightning_pose"


def frames_csv(
    joints: list[str], time_s: np.ndarray, keypoints_px: np.ndarray, scores: np.ndarray | None
) -> str:
    """One row per frame in DeepLabCut's layout: three header rows (``scorer``, ``bodyparts``,
    ``coords``), then the frame index, its time in seconds (a ``time``/``seconds`` column
    before the joints) and ``x``, ``y`` (original-frame pixels, 0 at the centre of the top-left
    pixel) and ``likelihood`` (the per-joint score; only for models that have one) per joint.
    ``pandas.read_csv(path, header=[0, 1, 2], index_col=0)`` reads it.

    Shapes:
        time_s (N,); keypoints_px (N, K, 2); scores (N, K) or None.
    """
    coords = ["x", "y", "likelihood"] if scores is not None else ["x", "y"]
    header = [
        ["scorer", SCORER] + [SCORER] * len(joints) * len(coords),
        ["bodyparts", "time"] + [j for j in joints for _ in coords],
        ["coords", "seconds"] + coords * len(joints),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(header)
    for i in range(len(time_s)):
        values = np.concatenate(
            [keypoints_px[i], scores[i][:, None]] if scores is not None else [keypoints_px[i]],
            axis=1,
        )  # (K, 3) or (K, 2)
        writer.writerow([i, f"{time_s[i]:.6f}", *(f"{v:.3f}" for v in values.ravel())])
    return out.getvalue()


def check_every_frame(index: np.ndarray, info: VideoInfo) -> None:
    """Raises ValueError unless ``index`` is every frame of the video, in order."""
    if not np.array_equal(index, np.arange(info.frames)):
        raise ValueError(
            f"data.predict.video: {info.path}: predicted {len(index)} frames, expected all "
            f"{info.frames} in order"
        )


def write_video_predictions(
    output_dir: Path,
    info: VideoInfo,
    skeleton: Skeleton,
    arrays: dict[str, np.ndarray],
    draw_overlays: bool,
) -> None:
    """``predictions.npz`` (``frame_index (N,)``, ``time_s (N,)``, ``keypoints_px (N, K, 2)``
    original-frame pixels, ``scores (N, K)`` and the model's other outputs where present),
    ``predictions.csv`` (:func:`frames_csv`) and, with ``draw_overlays``, ``overlay.mp4``
    (the video re-read frame by frame, the skeleton drawn; ``mp4v``, the video's rate), each
    written atomically.

    Args:
        arrays: the merged predict outputs, ``index`` (N,) the frame indices included.

    Raises:
        ValueError: not every frame was predicted. OSError: OpenCV cannot write the overlay.
    """
    arrays = dict(arrays)
    index = arrays.pop("index")
    check_every_frame(index, info)
    time_s = index / info.fps
    values = {key: value.astype(np.float32) for key, value in arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, frame_index=index, time_s=time_s, **values)
    write_bytes_atomic(output_dir / "predictions.npz", buffer.getvalue())
    text = frames_csv(list(skeleton.joints), time_s, values["keypoints_px"], values.get("scores"))
    write_bytes_atomic(output_dir / "predictions.csv", text.encode())
    if draw_overlays:
        write_overlay_video(output_dir / "overlay.mp4", info, skeleton, values["keypoints_px"])


def write_overlay_video(
    path: Path, info: VideoInfo, skeleton: Skeleton, keypoints_px: np.ndarray
) -> None:
    """The video with each frame's keypoints and limbs drawn, frame by frame, to a temporary
    file renamed to ``path`` when complete.

    Shapes:
        keypoints_px: (N, K, 2) original-frame pixels, N = the video's frames.

    Raises:
        OSError: OpenCV cannot open a writer for ``path``.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".mp4")
    os.fchmod(fd, new_file_mode())  # as a plain open() would create it
    os.close(fd)
    writer = cv2.VideoWriter(
        tmp, cv2.VideoWriter_fourcc(*"mp4v"), info.fps, (info.width, info.height)
    )
    try:
        if not writer.isOpened():
            raise OSError(f"PredictionWriter: OpenCV cannot write the overlay video {path}")
        for frame, kp in zip(read_frames(info), keypoints_px, strict=True):  # kp (K, 2)
            drawn = draw_skeleton(frame, kp, skeleton, (255, 40, 40), limb_colour=(0, 200, 255))
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(tmp, path)
    except BaseException:
        writer.release()
        Path(tmp).unlink(missing_ok=True)
        raise
