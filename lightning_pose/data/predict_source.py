"""What ``predict`` estimates poses on when not the test split: ``data.predict`` in a config,
e.g. ``--data.predict.image_dir=photos/`` or ``--data.predict.video=clip.mp4``, each optionally
with ``--data.predict.boxes=dets.json`` (COCO detections, :mod:`lightning_pose.data.detections`)."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_pose.data.annotations import DatasetError


@dataclass(frozen=True)
class PredictSource:
    """The unannotated images ``predict`` reads: a folder of images or a video, each image
    (frame) whole or cut into detected person boxes.

    Args:
        image_dir: a folder of images. ``predict`` decodes every image it will read when it
            sets up and stops, listing every missing, truncated or undecodable file, before the
            model runs: no image is skipped, so ``predictions.npz`` always covers the folder.
        video: a video file instead of ``image_dir``: its frames, decoded in order one at a
            time (:mod:`lightning_pose.data.video`; at most one loader worker). A video that
            cannot be opened or has no frames stops predict when it sets up; a frame that fails
            to decode, or changes size, stops it there, naming the frame.
        boxes: a COCO detections file (``[{image_id or file_name, bbox, score}]``, see
            :mod:`lightning_pose.data.detections`) naming images of ``image_dir``: one estimate
            per box, cropped as the COCO reader crops (``bbox_scale``). With ``video``,
            ``image_id`` is the 0-based frame index and each frame keeps its best-scoring box;
            a frame without one uses the whole frame. None: the whole image (frame), padded to
            a square.
        bbox_scale: the square box's side as a multiple of the detection's longer side
            (mmpose's and HRNet's 1.25).

    :class:`~lightning_pose.data.PoseDataModule` checks the source when it is built
    (:meth:`check`), so that a bad one is refused with its own message rather than one
    jsonargparse wraps.
    """

    image_dir: str | None = None
    video: str | None = None
    boxes: str | None = None
    bbox_scale: float = 1.25

    def check(self) -> None:
        """Refuse a source that names no images.

        Raises:
            ValueError: both ``image_dir`` and ``video`` given.
            DatasetError: neither given (``boxes`` then names images of nothing).
        """
        if self.image_dir is not None and self.video is not None:
            raise ValueError("data.predict.video and data.predict.image_dir: give one")
        if self.image_dir is None and self.video is None:
            given = (
                "" if self.boxes is None else f" (data.predict.boxes={self.boxes} names its images)"
            )
            raise DatasetError(
                f"data.predict needs data.predict.image_dir (a folder of images) or "
                f"data.predict.video (a video file){given}; leave data.predict unset to "
                "predict the test split"
            )
