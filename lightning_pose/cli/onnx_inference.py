"""Run a file written by ``lightning-pose export`` with ONNX Runtime: ``predict --onnx FILE``.

The file's metadata (:func:`lightning_pose.cli.export.onnx_metadata`) must fit the config: the
same joints, in the same order, and the same input size (and, for a cascade, the same
high-resolution factor); a file that does not is refused before anything is predicted.
:class:`OnnxEstimate` stands in for the model's ``estimate``: ``predict_step`` and the
``PredictionWriter`` are those of the checkpoint, so the outputs are the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid
from lightning_pose.codecs.heatmap import SUBPIXEL, HeatmapCodec
from lightning_pose.codecs.integral import soft_argmax
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.models.base import Batch, Estimate, PoseEstimator


def read_metadata(path: Path, key: str = "--onnx") -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file.

    Raises:
        FileNotFoundError: no such file. ValueError: not an ONNX model.
    """
    import onnx  # the optional ``export`` extra

    if not path.is_file():
        raise FileNotFoundError(f"{key}: {path} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # a protobuf DecodeError and others, for a file that is not ONNX
        raise ValueError(f"{key}: {path} cannot be read as an ONNX model: {err}") from err
    return {p.key: p.value for p in proto.metadata_props}


def onnx_mismatches(
    metadata: dict[str, str], skeleton: Skeleton, input_size: int, highres_factor: int
) -> list[str]:
    """How an exported file's metadata differs from the config: joints, input size, and the
    high-resolution factor of a cascade; also a file that lacks them (not written by
    ``lightning-pose export``). Empty when it fits."""
    missing = [k for k in ("joint_names", "input_size", "highres_factor") if k not in metadata]
    if missing:
        return [f"its metadata lacks {missing}; expected a file written by lightning-pose export"]
    problems = []
    joints = json.loads(metadata["joint_names"])
    if joints != list(skeleton.joints):
        problems.append(
            f"it estimates the {len(joints)} joints ({', '.join(joints)}), the config's data "
            f"the {skeleton.num_joints} of {skeleton.name!r} ({', '.join(skeleton.joints)}); use "
            "the dataset config it was exported with"
        )
    if int(metadata["input_size"]) != input_size:
        problems.append(
            f"its input is {metadata['input_size']} px, the config asks for data.input_size="
            f"{input_size}; set --data.input_size={metadata['input_size']}"
        )
    factor = int(metadata["highres_factor"])
    if factor > 1 and factor != highres_factor:
        problems.append(
            f"its image_hr input is {factor} x the input size, the config's "
            f"data.highres_factor={highres_factor}; set --data.highres_factor={factor}"
        )
    return problems


def decode_heatmaps(
    heatmaps: np.ndarray | torch.Tensor, input_size: int, decoder: str = "dark"
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and scores from the output of a ``lightning-pose export --heatmaps`` file, as
    the model decodes its heat-maps.

    ``decoder`` is the file's ``heatmap_decoder`` metadata: ``"dark"``, ``"quarter"`` or
    ``"none"``: the argmax cell and that sub-cell step
    (:class:`~lightning_pose.codecs.heatmap.HeatmapCodec`, DARK, Zhang et al. 2020 §3.2, in
    1-D form per axis), score the map's maximum; ``"integral"``: the softmax expectation
    (:func:`~lightning_pose.codecs.integral.soft_argmax`, Sun et al. 2018). Cell ``g`` of a
    ``G``-cell map is input pixel ``(g + 0.5) S / G - 0.5``.

    Shapes:
        heatmaps: (B, K, h, w) float32. returns keypoints_px (B, K, 2) float32, (x, y) pixels
        of the S x S input (0 at the centre of its top-left pixel; to original-image pixels
        as the file's ``box_convention`` says), and scores (B, K) float32.

    Raises:
        ValueError: an unknown ``decoder`` or heat-maps not (B, K, h, w).
    """
    maps = torch.as_tensor(np.asarray(heatmaps, dtype=np.float32))
    if decoder == "integral":
        keypoints_norm, scores = soft_argmax(maps)
    elif decoder in SUBPIXEL:
        keypoints_norm, scores = HeatmapCodec(subpixel=decoder).decode(maps)
    else:
        raise ValueError(f"decode_heatmaps: decoder must be one of {(*SUBPIXEL, 'integral')}")
    keypoints_px = norm_to_grid(keypoints_norm, input_size)  # (B, K, 2) input pixels
    return keypoints_px.numpy(), scores.numpy()


class OnnxEstimate:
    """An ONNX Runtime session that answers as ``PoseEstimator.estimate`` does: one stage
    (the exported final estimate) box-normalised, and the file's other outputs (``scores``,
    window scores) under their names.

    Args:
        path: the ``.onnx`` file.
        input_size: S (checked against the file by :func:`check_onnx_fits`).
        threads: ONNX Runtime's intra-op threads; None = its default (every core).

    Shapes:
        __call__: batch["image"] (B, 3, S, S) [, batch["image_hr"]] -> ``stages`` [(B, K, 2)]
        box-normalised, ``scores`` (B, K).
    """

    def __init__(self, path: Path, input_size: int, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.input_size = input_size
        options = ort.SessionOptions()
        # No busy-waiting between runs: spinning intra-op threads would take the cores from
        # torch and the loader workers that run between two batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        # a ``--heatmaps`` file: decoded here, as the model decodes (decode_heatmaps)
        self.decoder = read_metadata(self.path).get("heatmap_decoder")

    def __call__(self, batch: Batch) -> Estimate:
        missing = [name for name in self.inputs if name not in batch]
        if missing:
            raise ValueError(f"--onnx: {self.path} needs the inputs {missing}, not in the batch")
        feeds = {n: batch[n].detach().float().cpu().contiguous().numpy() for n in self.inputs}
        result = dict(zip(self.outputs, self.session.run(None, feeds), strict=True))
        device = batch["image"].device
        if self.decoder is not None:
            keypoints, scores = decode_heatmaps(result["heatmaps"], self.input_size, self.decoder)
            result = {"keypoints_px": keypoints, "scores": scores}
        keypoints_px = torch.from_numpy(result["keypoints_px"]).to(device)  # (B, K, 2) input px
        estimate: Estimate = {"stages": [grid_to_norm(keypoints_px, self.input_size)]}
        for key in list(result)[1:]:  # scores (B, K), window scores
            estimate[key] = torch.from_numpy(result[key]).to(device)
        return estimate


def check_onnx_fits(
    path: Path, skeleton: Skeleton, input_size: int, highres_factor: int
) -> dict[str, str]:
    """Refuse an ONNX file whose metadata does not fit the config; returns its metadata.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_metadata` and :func:`onnx_mismatches`.
    """
    metadata = read_metadata(path)
    problems = onnx_mismatches(metadata, skeleton, input_size, highres_factor)
    if problems:
        raise ValueError(f"--onnx: {path} does not fit the config: {'; and '.join(problems)}")
    return metadata


def attach_onnx(
    model: PoseEstimator, path: Path, skeleton: Skeleton, input_size: int, highres_factor: int
) -> OnnxEstimate:
    """Check ``path`` fits the config, then make ``model.estimate`` run it (an instance
    attribute over the class's method); returns the stand-in."""
    check_onnx_fits(path, skeleton, input_size, highres_factor)
    estimate = OnnxEstimate(path, input_size)
    model.estimate = estimate
    return estimate
