"""Frames of a video for ``predict --data.predict.video=clip.mp4``: decoded with OpenCV in
order, one at a time (never the whole video in memory), each frame a predict sample.

The person box of a frame is its detection where a detections file gives one
(:func:`~lightning_pose.data.detections.read_video_detections`), else the whole frame padded to a
square, as for a folder of images (:class:`~lightning_pose.data.dataset.ImageFolderDataset`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lightning_pose.codecs.box import whole_image_box
from lightning_pose.data.dataset import predict_sample


class VideoError(ValueError):
    """A video that cannot be read: the message names the file (and the frame)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    Attributes:
        path: the file.
        frames: frame count (``CAP_PROP_FRAME_COUNT``).
        fps: frames per second (``CAP_PROP_FPS``; a frame's time is ``index / fps`` seconds).
        width, height: frame size, pixels.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int


def open_video(path: Path, key: str = "data.predict.video") -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture``.

    Raises:
        FileNotFoundError: no such file. VideoError: OpenCV cannot open it.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{key}: {path} does not exist; expected a video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(
            f"{key}: {path} cannot be opened as a video by OpenCV (expected e.g. .mp4, .avi)"
        )
    return capture


def probe_video(path: Path, key: str = "data.predict.video") -> VideoInfo:
    """Open the video, read its frame count, rate and size, and decode its first frame.

    Raises:
        FileNotFoundError, VideoError: the file is missing, cannot be opened, has no frames
            (or its first frame does not decode), or has no frame rate.
    """
    capture = open_video(path, key)
    try:
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        ok, frame = capture.read()
    finally:
        capture.release()
    if frames <= 0 or not ok or frame is None:
        raise VideoError(f"{key}: {path} has no frames (the container says {frames})")
    if not fps > 0:
        raise VideoError(f"{key}: {path} has no frame rate (CAP_PROP_FPS = {fps})")
    return VideoInfo(path, frames, fps, frame.shape[1], frame.shape[0])


def read_frames(info: VideoInfo, key: str = "data.predict.video") -> Iterator[np.ndarray]:
    """Every frame of the video in order, RGB uint8 ``(H, W, 3)``, one at a time.

    Raises:
        VideoError: a frame fails to decode before the container's frame count is reached, or
            a frame's size differs from the first frame's (the message names the file and the
            frame index).
    """
    capture = open_video(info.path, key)
    try:
        for index in range(info.frames):
            ok, frame = capture.read()
            if not ok or frame is None:
                raise VideoError(
                    f"{key}: {info.path}: frame {index} of {info.frames} failed to decode; "
                    f"frames 0-{index - 1} were read"
                )
            if frame.shape[:2] != (info.height, info.width):
                raise VideoError(
                    f"{key}: {info.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]} px, "
                    f"the video's first frame {info.width}x{info.height}; expected one frame size"
                )
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


class VideoFrames(IterableDataset):
    """The frames of one video as predict samples, in order: ``image (3, S, S)``, ``box (4,)``
    (the frame's row of ``boxes`` where it is finite, else the whole frame padded to a square;
    ``(cx, cy, w, h)`` pixels), ``index ()`` the frame index and, for
    ``highres_factor`` f > 1, ``image_hr (3, S f, S f)``, as in
    :class:`~lightning_pose.data.dataset.ImageFolderDataset`.

    Read by one process: in a ``DataLoader`` use at most one worker (each worker would read the
    whole video).

    Raises:
        RuntimeError: iterated in a loader with more than one worker.
    """

    def __init__(
        self,
        info: VideoInfo,
        input_size: int,
        highres_factor: int = 1,
        boxes: np.ndarray | None = None,
    ) -> None:
        """``boxes``: ``(info.frames, 4)`` per-frame person boxes, NaN rows for none.

        Raises:
            ValueError: ``boxes`` does not have one row per frame.
        """
        self.info = info
        self.input_size = input_size
        self.highres_factor = highres_factor
        whole = whole_image_box(info.width, info.height)  # (4,)
        if boxes is None:
            boxes = np.tile(whole, (info.frames, 1))
        if boxes.shape != (info.frames, 4):
            raise ValueError(
                f"VideoFrames: {info.path}: boxes of shape {boxes.shape}, expected "
                f"({info.frames}, 4), one per frame"
            )
        found = np.isfinite(boxes).all(axis=1)
        self.boxes = np.where(found[:, None], boxes, whole).astype(whole.dtype)  # (F, 4)

    def __len__(self) -> int:
        return self.info.frames

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        if worker is not None and worker.num_workers > 1:
            raise RuntimeError(
                f"VideoFrames: {self.info.path} is read by {worker.num_workers} loader workers; "
                "expected at most 1 (each would read every frame)"
            )
        for index, frame in enumerate(read_frames(self.info)):
            yield predict_sample(
                frame, self.boxes[index], index, self.input_size, self.highres_factor
            )
