"""Video frames for predict: a real clip made from real LSPet images, read in order; videos
that cannot be opened, have no frames, stop decoding or change frame size are named."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightning_pose.data.video import VideoError, VideoFrames, probe_video, read_frames

SIZE = (160, 120)  # (W, H) of the clip
SOURCES = [f"im{i:05d}.jpg" for i in (10, 20, 30, 40, 50, 60)]


def write_clip(path: Path, shared_data: Path, fourcc: str = "mp4v", frames: int = 6) -> Path:
    """Real LSPet validation images, resized to ``SIZE``, as a 10 fps video."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for name in SOURCES[:frames]:
        writer.write(cv2.resize(cv2.imread(str(shared_data / "lspet" / "images" / name)), SIZE))
    writer.release()
    return path


def source_frames(shared_data: Path) -> list[np.ndarray]:
    images = [cv2.imread(str(shared_data / "lspet" / "images" / name)) for name in SOURCES]
    return [cv2.cvtColor(cv2.resize(im, SIZE), cv2.COLOR_BGR2RGB) for im in images]


def test_frames_are_read_in_order(tmp_path: Path, shared_data: Path) -> None:
    info = probe_video(write_clip(tmp_path / "clip.mp4", shared_data))
    assert (info.frames, info.fps, info.width, info.height) == (6, 10.0, *SIZE)
    sources = source_frames(shared_data)
    for index, frame in enumerate(read_frames(info)):
        assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
        # lossy (MPEG-4 part 2), but each frame is nearest to its own source image
        errors = [np.abs(frame.astype(float) - s).mean() for s in sources]
        assert int(np.argmin(errors)) == index and errors[index] < 10.0, errors


def test_samples_are_frames_with_the_whole_frame_as_box(tmp_path: Path, shared_data: Path) -> None:
    info = probe_video(write_clip(tmp_path / "clip.mp4", shared_data))
    samples = list(VideoFrames(info, input_size=64, highres_factor=2))
    assert len(samples) == len(VideoFrames(info, 64)) == 6
    assert [int(s["index"]) for s in samples] == list(range(6))
    # whole frame padded to a square: centre of the 160 x 120 frame, side 160 (pixel centres)
    torch.testing.assert_close(
        samples[0]["box"], torch.tensor([79.5, 59.5, 160.0, 160.0]), rtol=0, atol=1e-6
    )
    assert samples[0]["image"].shape == (3, 64, 64)
    assert samples[0]["image_hr"].shape == (3, 128, 128)


def test_missing_and_unopenable_videos_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"data.predict.video: {tmp_path}/none.mp4 does"):
        probe_video(tmp_path / "none.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match=rf"{text} cannot be opened as a video"):
        probe_video(text)


def test_a_video_without_frames_is_named(tmp_path: Path, shared_data: Path) -> None:
    empty = write_clip(tmp_path / "empty.avi", shared_data, fourcc="MJPG", frames=0)
    with pytest.raises(VideoError, match=rf"{empty} has no frames"):
        probe_video(empty)


def test_a_frame_that_fails_to_decode_stops_with_its_index(
    tmp_path: Path, shared_data: Path
) -> None:
    """A real Motion-JPEG AVI cut in half: its header still says 6 frames, 3 decode."""
    clip = write_clip(tmp_path / "clip.avi", shared_data, fourcc="MJPG")
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    info = probe_video(clip)
    assert info.frames == 6
    frames = read_frames(info)
    for _ in range(3):
        next(frames)
    with pytest.raises(VideoError, match=rf"{clip}: frame 3 of 6 failed to decode"):
        next(frames)


class ShrinkingCapture:
    """A stand-in for ``cv2.VideoCapture`` whose frame 2 is smaller than the others (OpenCV's
    writer cannot write such a file)."""

    def __init__(self, path: str) -> None:
        self.position = 0

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_COUNT: 4.0, cv2.CAP_PROP_FPS: 25.0}[prop]

    def read(self) -> tuple[bool, np.ndarray]:
        size = (90, 120) if self.position == 2 else (120, 160)
        self.position += 1
        return True, np.zeros((*size, 3), np.uint8)

    def release(self) -> None:
        pass


def test_a_frame_size_change_names_the_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "changing.mp4"
    path.write_bytes(b"stand-in")
    monkeypatch.setattr(cv2, "VideoCapture", ShrinkingCapture)
    info = probe_video(path)
    with pytest.raises(VideoError, match=rf"{path}: frame 2 is 120x90 px, .* first frame 160x120"):
        list(read_frames(info))
