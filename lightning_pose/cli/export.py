"""Export a trained model to ONNX, and run an exported file with ONNX Runtime.

    python -m lightning_pose export -c conf/lspet.yaml -c conf/model/heatmap_budget.yaml \\
        --ckpt_path runs/lspet/version_0/checkpoints/last.ckpt --format onnx model.onnx

The graph is the model's own :meth:`~lightning_pose.models.base.PoseEstimator.estimate` in eval
mode, traced by ``torch.onnx.export`` (nothing here writes graph code), wrapped by
:class:`InferenceGraph`:

* input ``image (B, 3, S, S)`` float32 RGB in [0, 1], the person box resampled to the network's
  ``S x S`` input (``data.input_size``); the trunk's normalisation (mean/std) is inside the
  graph. The cascade (``num_stages >= 2``) also takes ``image_hr (B, 3, S f, S f)``, the same
  box at ``f = data.highres_factor`` times the resolution, from which its later stages crop.
* output ``keypoints_px (B, K, 2)``: the final stage's (x, y) in pixels of the ``S x S`` input,
  0 at the centre of its top-left pixel; to original-image pixels: ``box_centre +
  ((keypoints_px + 0.5) / S - 0.5) * box_size`` (:func:`lightning_pose.codecs.box.decode` of
  :func:`lightning_pose.codecs.grid.grid_to_norm`).
* output ``scores (B, K)`` where the family has per-joint confidences: the heat-map models (the
  coarse heat-map's maximum; decoding, argmax and sub-cell step, is inside the graph) and the
  multi-task model with its joint detector (highest window probability), which also outputs
  its detectors' ``joint_window_scores`` and ``part_window_scores`` as predict writes them.
* the batch dimension B is dynamic.

What the model does at predict is what the graph does: a heat-map model configured with
``flip_test`` (``--model.init_args.flip_test=true``) has the mirrored pass and the averaging
of the heat-maps inside the graph.

``--heatmaps`` (:class:`HeatmapGraph`, the heat-map models without refinement) ends the graph
at the coarse heat-maps: output ``heatmaps (B, K, S/s, S/s)``, no decoding in the graph. The
decoding (argmax and sub-cell step) uses boolean tensors, which OpenCV 5's DNN module
(``cv2.dnn.readNetFromONNX``) refuses (``NaryEltwiseLayerImpl::getTypes``: ``CV_BoolC1``); the
heat-map file loads there and in ONNX Runtime, and
:func:`lightning_pose.cli.onnx_inference.decode_heatmaps` decodes its output exactly as the
model does (``predict --onnx`` does so itself). Tested in ``tests/cli/test_export.py`` against
the eager model under OpenCV DNN and ONNX Runtime.

The file's ``metadata_props`` say what it is (:func:`onnx_metadata`): joint names, flip pairs,
input size, high-resolution factor, the box and pixel convention, the outputs, the package
version, the model class and the source checkpoint (path and SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

import lightning_pose
from lightning_pose.codecs.grid import norm_to_grid
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.models.base import PoseEstimator
from lightning_pose.runtime.files import write_bytes_atomic

FORMATS = ("onnx",)
OPSET = 18
BOX_CONVENTION = (
    "image: the person box (cx, cy, w, h) in original-image pixels resampled to S x S "
    "(bilinear; outside the image black); keypoints_px: (x, y) pixels of that S x S input, 0 at "
    "the centre of its top-left pixel; original pixels = box_centre + ((keypoints_px + 0.5) / S "
    "- 0.5) * box_size"
)


class InferenceGraph(nn.Module):
    """What the ONNX file computes: ``model.estimate`` in eval mode, the final stage decoded
    to input pixels, and the other arrays predict writes.

    Args:
        model: any :class:`PoseEstimator` (its ``estimate`` is called as predict calls it).
        input_size: S, the side of the network input, pixels.
        extra_outputs: entries of the estimate returned after the keypoints, as
            ``predict_step`` returns them (see :func:`output_names`).

    Shapes:
        forward: image (B, 3, S, S) in [0, 1] [, image_hr (B, 3, S f, S f)] ->
        keypoints_px (B, K, 2) input pixels [, scores (B, K)] [, the multi-task model's
        joint_window_scores (B, K, G_y, G_x), part_window_scores (B, L, G_y, G_x)].
    """

    def __init__(self, model: PoseEstimator, input_size: int, extra_outputs: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_size = int(input_size)  # a Python int: traced as a constant
        self.extra_outputs = list(extra_outputs)

    def forward(self, image: Tensor, image_hr: Tensor | None = None) -> tuple[Tensor, ...]:
        batch = {"image": image} if image_hr is None else {"image": image, "image_hr": image_hr}
        estimate = self.model.estimate(batch)
        keypoints_px = norm_to_grid(estimate["stages"][-1], self.input_size)  # (B, K, 2)
        return (keypoints_px, *(estimate[key] for key in self.extra_outputs))


class HeatmapGraph(nn.Module):
    """What a ``--heatmaps`` file computes: the coarse heat-maps of a :class:`HeatmapPose`
    without refinement (flip-averaged with ``flip_test``, as its estimate is), undecoded.

    Shapes:
        forward: image (B, 3, S, S) in [0, 1] -> heatmaps (B, K, S/s, S/s).
    """

    def __init__(self, model: PoseEstimator) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.heatmaps(image, flip=self.model.flip_test)["coarse"]


def heatmap_decoder(model: PoseEstimator) -> str:
    """How a ``--heatmaps`` file's output is decoded: the model's sub-cell step (``"dark"``,
    ``"quarter"``, ``"none"``; :class:`~lightning_pose.codecs.heatmap.HeatmapCodec`) or
    ``"integral"`` (soft-argmax).

    Raises:
        ValueError: the model is not a heat-map model without refinement (its final estimate
            is not a decoding of one heat-map per joint).
    """
    from lightning_pose.models.heatmap import HeatmapPose

    if not isinstance(model, HeatmapPose) or model.refinement is not None:
        raise ValueError(
            f"--heatmaps: {type(model).__name__} "
            f"{'with a position refinement ' if isinstance(model, HeatmapPose) else ''}"
            "has no heat-maps that decode to its estimate; --heatmaps is for the heat-map "
            "models without refinement (training_phase: coarse, e.g. conf/model/"
            "heatmap_budget.yaml). Export without --heatmaps"
        )
    return "integral" if model.coarse_loss == "integral" else model.codec.subpixel


def example_inputs(model: PoseEstimator, input_size: int, highres_factor: int) -> dict[str, Tensor]:
    """Inputs to trace with: ``image`` and, for a cascade of >= 2 stages, ``image_hr``.

    Raises:
        ValueError: a cascade with ``highres_factor < 2`` (its stages crop from ``image_hr``).
    """
    inputs = {"image": torch.rand(2, 3, input_size, input_size, generator=torch.Generator())}
    if "image_hr" in needed_inputs(model):
        if highres_factor < 2:
            raise ValueError(
                f"{type(model).__name__} with {model.num_stages} stages crops from image_hr: "
                f"give highres_factor >= 2 (got {highres_factor}; data.match_model(model) "
                "gives the model's)"
            )
        side = input_size * highres_factor
        inputs["image_hr"] = torch.rand(2, 3, side, side, generator=torch.Generator())
    return inputs


def needed_inputs(model: PoseEstimator) -> list[str]:
    """The graph's input names: the cascade's later stages read ``image_hr``."""
    from lightning_pose.models.cascade import DeepPoseCascade

    cascade = isinstance(model, DeepPoseCascade) and model.num_stages >= 2
    return ["image", "image_hr"] if cascade else ["image"]


def output_names(model: PoseEstimator, inputs: dict[str, Tensor]) -> list[str]:
    """``keypoints_px`` and the entries of ``model.prediction_keys`` its estimate has
    (``scores``; the multi-task model's window scores)."""
    with torch.no_grad():
        estimate = model.estimate(inputs)
    return ["keypoints_px", *(key for key in model.prediction_keys if key in estimate)]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_metadata(
    model: PoseEstimator,
    skeleton: Skeleton,
    input_size: int,
    highres_factor: int,
    outputs: Sequence[str],
    checkpoint: Path | None,
    decoder: str | None = None,
) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (every value a string; lists as JSON).
    ``checkpoint`` None: the config's initialisation (benchmarks), recorded as ``"none"``.
    ``decoder``: a ``--heatmaps`` file's (:func:`heatmap_decoder`), recorded as
    ``heatmap_decoder``."""
    extra = {} if decoder is None else {"heatmap_decoder": decoder}
    return extra | {
        "lightning_pose.version": lightning_pose.__version__,
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "num_stages": str(model.num_stages),
        "skeleton": skeleton.name,
        "joint_names": json.dumps(list(skeleton.joints)),
        "flip_pairs": json.dumps([list(p) for p in skeleton.flip_pairs]),
        "input_size": str(input_size),
        "highres_factor": str(highres_factor if "image_hr" in needed_inputs(model) else 1),
        "input_range": "RGB float32 in [0, 1]; the trunk's normalisation is inside the graph",
        "box_convention": BOX_CONVENTION,
        "outputs": json.dumps(list(outputs)),
        "source_checkpoint": str(checkpoint.resolve()) if checkpoint else "none",
        "source_checkpoint_sha256": file_sha256(checkpoint) if checkpoint else "none",
    }


def export_onnx(
    model: PoseEstimator,
    skeleton: Skeleton,
    input_size: int,
    highres_factor: int,
    checkpoint: Path | None,
    output: Path,
    opset: int = OPSET,
    heatmaps: bool = False,
) -> dict[str, str]:
    """Trace ``model`` (eval mode) to ONNX with a dynamic batch, add the metadata, check the
    file with ``onnx.checker`` and write it atomically to ``output``; returns the metadata.

    Args:
        model: the model, its weights already loaded from ``checkpoint``.
        skeleton, input_size, highres_factor: the config's data (``data.skeleton``,
            ``data.input_size``, ``data.highres_factor``: the model's ``image_hr_factor``
            unless the config sets it, ``PoseDataModule.match_model``).
        checkpoint: the source checkpoint, recorded in the metadata (None: the config's
            initialisation, for benchmarks).
        output: the ``.onnx`` file.
        opset: the ONNX opset (>= 16: ``GridSample``, which the refinement and the cascade use).
        heatmaps: end the graph at the heat-maps (:class:`HeatmapGraph`; the module
            docstring).

    Raises:
        ValueError: ``heatmaps`` for a model without them (:func:`heatmap_decoder`).
    """
    import onnx  # the optional ``export`` extra

    model = model.eval()
    decoder = heatmap_decoder(model) if heatmaps else None
    inputs = example_inputs(model, input_size, highres_factor)
    if heatmaps:
        outputs = ["heatmaps"]
        graph: nn.Module = HeatmapGraph(model).eval()
    else:
        outputs = output_names(model, inputs)
        graph = InferenceGraph(model, input_size, outputs[1:]).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        traced = Path(tmp) / "model.onnx"
        with torch.no_grad():
            program = torch.onnx.export(
                graph,
                tuple(inputs.values()),
                input_names=list(inputs),
                output_names=outputs,
                dynamic_shapes={name: {0: batch} for name in inputs},
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
            program.save(str(traced))
        proto = onnx.load(str(traced))
    metadata = onnx_metadata(
        model, skeleton, input_size, highres_factor, outputs, checkpoint, decoder
    )
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "lightning_pose"
    proto.producer_version = lightning_pose.__version__
    onnx.checker.check_model(proto)
    write_bytes_atomic(output, proto.SerializeToString())
    return metadata


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The export options, and the rest for the CLI (``-c FILE`` and ``--key=value``).

    Raises:
        SystemExit: a bad option (argparse's message), or an override not in ``--key=value``
            form (its value would be taken for the output file).
    """
    parser = argparse.ArgumentParser(
        prog="lightning-pose export",
        description="Export a trained checkpoint to ONNX (see lightning_pose.cli.export).",
        epilog="Other options (--data.input_size=..., --model.init_args....=...) go to the "
        "config as in fit; write them as --key=value.",
    )
    parser.add_argument("-c", "--config", action="append", default=[], help="config file")
    parser.add_argument("--ckpt_path", required=True, type=Path, help="trained checkpoint")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument(
        "--heatmaps",
        action="store_true",
        help="output the heat-maps, decoded outside the graph (lightning_pose.cli."
        "onnx_inference.decode_heatmaps): loads in OpenCV DNN; heat-map models without "
        "refinement",
    )
    parser.add_argument("output", type=Path, help="the file to write, e.g. model.onnx")
    args, rest = parser.parse_known_args(list(argv))
    loose = [a for a in rest if not (a.startswith("--") and "=" in a)]
    if loose:
        parser.error(f"unrecognised arguments {loose}: write config overrides as --key=value")
    return args, rest


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    """``lightning-pose export``: build the model from the configs, check the checkpoint fits
    them, load it, export; returns the metadata written.

    Raises:
        OSError: the output folder is not writable (before anything is built).
        FileNotFoundError, ValueError: the checkpoint is missing, unreadable or does not fit
            the config (as ``predict`` refuses it;
            :func:`lightning_pose.runtime.checkpoints.check_checkpoint_fits`).
    """
    from lightning_pose.callbacks.prediction_writer import check_writable
    from lightning_pose.cli.configured import configured_model
    from lightning_pose.runtime.checkpoints import checkpoint_file

    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    check_writable(args.output.parent, f"export output {args.output}")
    checkpoint_file(args.ckpt_path, "--ckpt_path")  # a readable checkpoint, before the model
    model, data = configured_model(args.config, overrides, args.ckpt_path, "--ckpt_path")
    metadata = export_onnx(
        model, data.skeleton, data.input_size, data.highres_factor, args.ckpt_path, args.output,
        args.opset, args.heatmaps,
    )  # fmt: skip
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB): {metadata['outputs']}")
    return metadata


__all__ = [
    "HeatmapGraph",
    "InferenceGraph",
    "export_onnx",
    "heatmap_decoder",
    "onnx_metadata",
    "main",
]
