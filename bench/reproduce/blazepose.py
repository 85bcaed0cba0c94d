"""MediaPipe BlazePose, off the shelf, on the LSPet validation split, scored with the package's
own metrics (``StageMetrics``, as every model of ``docs/RESULTS.md``): the "BlazePose vs our
models" comparison, reproducible from this repository.

BlazePose (Bazarevsky et al., "BlazePose: On-device Real-time Body Pose tracking", CVPR
Workshops 2020) finds one person with its detector, then predicts 33 landmarks in a crop around
them. It runs on each whole original image (RGB, MediaPipe's IMAGE running mode: the detector on
every image, no tracking, no smoothing), its 33 landmarks are mapped to LSP's 14 joints and
scored in original-image pixels on the 900 validation images (every 10th image, the split
``PoseDataModule`` evaluates our models on). The key number is ``pdj@0.2/limb_joints``: PDJ
(PCK normalised by the torso diameter, DeepPose §5) at 0.2 over the 12 limb joints (shoulders,
elbows, wrists, hips, knees, ankles), which both skeletons have.

Joints: BlazePose's left and right are the person's own, as LSP's (the report's left/right
check measures it: how often the predicted left joint is nearer the labelled left joint than the
labelled right one, and PDJ with the sides swapped). LSP's neck is the shoulder midpoint;
BlazePose has no head top, so it is estimated as ``neck + 1.5 * (ear midpoint - neck)`` (a
fixed head proportion: ears about halfway up the head, the neck about as long as the ears are
high above the chin; not fitted to LSPet). Neck and head top count in the 14-joint PDJ, PCKh
and PCP only. An image without a detection predicts NaN for every joint: the metrics count a
non-finite prediction as a miss (``lightning_pose.metrics.functional``).

Models: ``mediapipe==0.10.21`` (the ``blazepose`` extra) is the last release whose wheel ships
pose models, and it ships only ``modules/pose_detection/pose_detection.tflite`` and
``modules/pose_landmark/pose_landmark_full.tflite``: BlazePose GHUM *full*. Its Pose solution
downloaded lite and heavy at run time (not possible without internet), and releases from 0.10.30
on ship no model at all: their Tasks API reads an official ``pose_landmarker_{lite,full,heavy}
.task`` download. ``--model full`` bundles the two shipped files into such a ``.task`` with the
input normalisation the Tasks graph reads from model metadata ([-1, 1] for the detector,
[0, 1] for the landmark model: the ranges of MediaPipe's own Pose solution graphs), written by
mediapipe's metadata writer; the weights are untouched. ``--solution-check`` also runs
MediaPipe's Pose solution (``static_image_mode=True``, the same shipped files, its own graphs)
and reports both rows and their distance. ``--model-path`` runs an official ``.task`` as is.

Install (mediapipe is an optional extra, never a dependency of the package or its tests), in a
separate environment:

    python3.11 -m venv /tmp/mpvenv
    grep -vE '^(numpy|opencv-python-headless|wandb)==' constraints.txt > /tmp/bp-constraints.txt
    /tmp/mpvenv/bin/pip install -e '.[blazepose]' -c /tmp/bp-constraints.txt

mediapipe 0.10.21 requires numpy<2 and protobuf<5, which conflict with three pins of
``constraints.txt``: numpy==2.4.6, opencv-python-headless==5.0.0.93 (needs numpy>=2) and
wandb==0.31.0 (needs protobuf>=5). Dropping those three lets pip resolve numpy 1.26.4,
opencv-python-headless and mediapipe's opencv-contrib-python both 4.11.0.86, protobuf 4.25.9
and wandb 0.28.0; torch, torchvision, torchmetrics and scipy keep their pins. This script needs
only the readers and the metrics from the package.

Usage:
    taskset -c 0,1 /tmp/mpvenv/bin/python bench/reproduce/blazepose.py [--model full|lite|heavy]
        [--model-path PATH.task] [--max-images N] [--threads N] [--solution-check]
        [--root DATA_ROOT] [--output docs/results/blazepose_lspet.md]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.skeleton import LSP_SKELETON, Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics
from lightning_pose.reports import provenance
from lightning_pose.runtime.files import write_bytes_atomic

# BlazePose's 33 landmarks (MediaPipe pose landmark model card): the ones used here. The 12
# limb joints have the same names in LSP (lightning_pose.data.skeleton.LSP_SKELETON).
NUM_LANDMARKS = 33
BLAZEPOSE_INDEX = {
    "left_ear": 7,
    "right_ear": 8,
    "left_shoulder": 11,
    "right_shoulder": 12,
    "left_elbow": 13,
    "right_elbow": 14,
    "left_wrist": 15,
    "right_wrist": 16,
    "left_hip": 23,
    "right_hip": 24,
    "left_knee": 25,
    "right_knee": 26,
    "left_ankle": 27,
    "right_ankle": 28,
}
HEAD_TOP_FROM_NECK = 1.5  # head top = neck + 1.5 (ear midpoint - neck), see the docstring
REPORT_GROUPS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "neck", "head_top")
# Input normalisation of the shipped models, (mean, std) per channel on 0..255 values.
DETECTOR_NORM, LANDMARK_NORM = (127.5, 127.5), (0.0, 255.0)

Detect = Callable[[np.ndarray], "np.ndarray | None"]


def landmarks_to_px(landmarks_norm: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised landmarks (x / image width, y / image height, 0 at the image's
    top-left corner) to pixels with 0 at the centre of the top-left pixel.

    Shapes:
        landmarks_norm (L, 2) -> (L, 2) pixels.
    """
    return landmarks_norm * np.array([width, height], dtype=np.float64) - 0.5


def blazepose_to_lsp(
    landmarks_px: np.ndarray | None, skeleton: Skeleton = LSP_SKELETON
) -> np.ndarray:
    """BlazePose's 33 landmarks to the skeleton's joints (LSP: 14): limb joints by name, neck =
    shoulder midpoint, head top extrapolated from the neck through the ear midpoint. None (no
    detection) gives NaN everywhere, which the metrics count as misses.

    Shapes:
        landmarks_px (33, 2) pixels or None -> (K, 2) float64 pixels.
    """
    out = np.full((skeleton.num_joints, 2), np.nan)  # (K, 2)
    if landmarks_px is None:
        return out
    if landmarks_px.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks_px must have shape (33, 2), got {landmarks_px.shape}")
    lm = {name: landmarks_px[i] for name, i in BLAZEPOSE_INDEX.items()}
    neck = (lm["left_shoulder"] + lm["right_shoulder"]) / 2
    ears = (lm["left_ear"] + lm["right_ear"]) / 2
    lm["neck"] = neck
    lm["head_top"] = neck + HEAD_TOP_FROM_NECK * (ears - neck)
    for k, joint in enumerate(skeleton.joints):
        if joint in lm:
            out[k] = lm[joint]
    return out


def score(
    pred_px: np.ndarray,
    keypoints_px: np.ndarray,
    labelled: np.ndarray,
    skeleton: Skeleton = LSP_SKELETON,
) -> dict[str, float]:
    """``StageMetrics`` (EvaluationProtocol defaults) of predictions, as plain floats: every
    ``pdj@t``, ``pckh@t``, ``pcp@t`` with its groups (``pdj@0.2/limb_joints``), the
    ``count/...`` totals, and ``count/pdj/limb_joints``.

    Shapes:
        pred_px (N, K, 2) pixels, NaN = no prediction; keypoints_px (N, K, 2) pixels;
        labelled (N, K) bool.
    """
    target = torch.from_numpy(np.asarray(keypoints_px, dtype=np.float32))  # (N, K, 2)
    lab = torch.from_numpy(np.asarray(labelled, dtype=bool))  # (N, K)
    batch = {
        "keypoints_px": target,
        "labelled": lab,
        "torso_diameter_px": segment_lengths(target, lab, skeleton.torso),  # (N,)
        "head_size_px": segment_lengths(target, lab, skeleton.head),  # (N,)
    }
    metrics = StageMetrics(skeleton, EvaluationProtocol())
    metrics.update(torch.from_numpy(np.asarray(pred_px, dtype=np.float32)), batch)
    out = {k: float(v) for k, v in (metrics.compute() | metrics.counts()).items()}
    limb = skeleton.groups()["limb_joints"]
    out["count/pdj/limb_joints"] = float(metrics["pdj"].counts[limb].sum())
    return out


def side_agreement(
    pred_px: np.ndarray, keypoints_px: np.ndarray, labelled: np.ndarray, joint: str
) -> tuple[int, int]:
    """How often the predicted left ``joint`` (e.g. ``"shoulder"``) is nearer the labelled
    left one than the labelled right one: ``(agreeing, images)`` over images with both sides
    labelled, apart, and predicted.

    Shapes:
        pred_px, keypoints_px (N, 14, 2) LSP joints in pixels; labelled (N, 14) bool.
    """
    left, right = (
        LSP_SKELETON.joints.index(f"left_{joint}"),
        LSP_SKELETON.joints.index(f"right_{joint}"),
    )
    ok = labelled[:, left] & labelled[:, right] & np.isfinite(pred_px[:, left]).all(-1)
    ok &= np.linalg.norm(keypoints_px[:, left] - keypoints_px[:, right], axis=-1) > 0
    near_left = np.linalg.norm(pred_px[:, left] - keypoints_px[:, left], axis=-1)  # (N,)
    near_right = np.linalg.norm(pred_px[:, left] - keypoints_px[:, right], axis=-1)  # (N,)
    return int((ok & (near_left < near_right)).sum()), int(ok.sum())


def shipped_files(model: str) -> tuple[Path, Path]:
    """The pose detector and the ``model`` landmark model that the installed mediapipe wheel
    ships (``pose_detection.tflite``, ``pose_landmark_{model}.tflite``).

    Raises:
        FileNotFoundError: the wheel does not ship one of them (naming what it ships).
    """
    import mediapipe as mp

    modules = Path(mp.__file__).parent / "modules"
    detector = modules / "pose_detection" / "pose_detection.tflite"
    landmarks = modules / "pose_landmark" / f"pose_landmark_{model}.tflite"
    for path in (detector, landmarks):
        if not path.is_file():
            shipped = sorted(p.name for p in modules.glob("pose_*/*.tflite"))
            raise FileNotFoundError(
                f"{path} not found: mediapipe {mp.__version__} ships {shipped or 'no model'}; "
                f"pass --model-path to an official pose_landmarker_{model}.task"
            )
    return detector, landmarks


def build_task(model: str, directory: Path) -> Path:
    """A ``pose_landmarker_{model}.task`` in ``directory`` from :func:`shipped_files`, with the
    input normalisation as TFLite metadata (see the module docstring); weights untouched.

    Raises:
        FileNotFoundError: the wheel does not ship the model.
    """
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    detector, landmarks = shipped_files(model)

    def with_metadata(path: Path, norm: tuple[float, float]) -> bytes:
        writer = metadata_writer.MetadataWriter.create(bytearray(path.read_bytes()))
        writer.add_general_info(path.stem).add_image_input([norm[0]], [norm[1]])
        return bytes(writer.populate()[0])

    task = directory / f"pose_landmarker_{model}.task"
    with zipfile.ZipFile(task, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("pose_detector.tflite", with_metadata(detector, DETECTOR_NORM))
        bundle.writestr("pose_landmarks_detector.tflite", with_metadata(landmarks, LANDMARK_NORM))
    return task


def make_landmarker(task: Path, threads: int | None) -> Detect:
    """MediaPipe Tasks ``PoseLandmarker`` in IMAGE mode, one pose, default confidence
    thresholds (0.5, as the Pose solution's): RGB (H, W, 3) uint8 -> normalised landmarks
    (33, 2) or None. ``threads``: XNNPACK threads (None: MediaPipe's default, 1 on Linux
    desktop builds)."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    class Options(base_options.BaseOptions):
        def to_pb2(self):  # the Python API has no thread count; the proto has
            proto = super().to_pb2()
            if threads is not None:
                proto.acceleration.xnnpack.num_threads = threads
            return proto

    landmarker = vision.PoseLandmarker.create_from_options(
        vision.PoseLandmarkerOptions(
            base_options=Options(model_asset_path=str(task)),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=1,
        )
    )

    def detect(rgb: np.ndarray) -> np.ndarray | None:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not result.pose_landmarks:
            return None
        return np.array([[p.x, p.y] for p in result.pose_landmarks[0]])  # (33, 2)

    return detect


def make_solution(model: str) -> Detect:
    """MediaPipe's Pose solution on the shipped files (``static_image_mode``: the detector on
    every image), as :func:`make_landmarker`."""
    import mediapipe as mp

    complexity = {"lite": 0, "full": 1, "heavy": 2}[model]
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=complexity)

    def detect(rgb: np.ndarray) -> np.ndarray | None:
        result = pose.process(rgb)
        if result.pose_landmarks is None:
            return None
        return np.array([[p.x, p.y] for p in result.pose_landmarks.landmark])  # (33, 2)

    return detect


def run(detect: Detect, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks of every image and the time per image: the ``detect`` call alone, and with
    reading and decoding the JPEG. One untimed warm-up call on the first image. Hand-timed,
    not ``torch.utils.benchmark.Timer``: one call per distinct image, whose result is kept,
    split into its read and detect stages (a ``Timer`` repeats one statement on one input).

    Shapes:
        returns landmarks_px (N, 33, 2) NaN where nothing was detected; detect_ms (N,);
        total_ms (N,).
    """
    from lightning_pose.data.dataset import load_image

    detect(load_image(paths[0]))  # warm-up: graph and delegate set-up
    landmarks = np.full((len(paths), NUM_LANDMARKS, 2), np.nan)
    detect_ms, total_ms = np.zeros(len(paths)), np.zeros(len(paths))
    for i, path in enumerate(paths):
        t0 = time.perf_counter()
        rgb = load_image(path)  # (H, W, 3) uint8
        t1 = time.perf_counter()
        found = detect(rgb)
        t2 = time.perf_counter()
        detect_ms[i], total_ms[i] = 1e3 * (t2 - t1), 1e3 * (t2 - t0)
        if found is not None:
            landmarks[i] = landmarks_to_px(found, rgb.shape[1], rgb.shape[0])
    return landmarks, detect_ms, total_ms


def _pct(value: float | None) -> str:
    """A fraction in %, or "n/a" where the metric counted nothing (its key is left out)."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def _ms(values: np.ndarray) -> str:
    return f"{np.median(values):.1f} / {np.mean(values):.1f}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def report(rows: list[dict], meta: dict[str, str]) -> str:
    """The markdown report: one row per run (``name``, ``results`` of :func:`score`,
    ``no_detection``, ``no_detection_pdj``, ``detected``: :func:`score` of the images with a
    detection, ``detect_ms``, ``total_ms``, ``sides`` of
    :func:`side_agreement` for shoulders and hips, ``swapped``: :func:`score` with left and
    right exchanged)."""
    lines = [f"# MediaPipe BlazePose on LSPet validation ({meta['images']} images)", ""]
    lines += [f"* {key}: {value}" for key, value in meta.items() if key != "images"]
    lines += [
        "",
        "PDJ at fractions of the torso diameter (DeepPose §5), in %, scored by "
        "`StageMetrics` in original-image pixels. *limb joints*: the 12 shoulders, elbows, "
        "wrists, hips, knees and ankles; *14 joints* adds the neck (shoulder midpoint) and "
        "the head top (extrapolated from neck and ears, see `bench/reproduce/blazepose.py`). "
        "An image without a detection counts every joint as a miss.",
        "",
        "| run | PDJ@0.2 limb joints | PDJ@0.1 limb joints | PDJ@0.2 14 joints | "
        "PDJ@0.1 14 joints | PCKh@0.5 | PCP@0.5 | images (PDJ) | joints (limb / 14) | "
        "no detection (PDJ images) | PDJ@0.2 limb joints, images with a detection |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row["results"]
        keys = ("pdj@0.2/limb_joints", "pdj@0.1/limb_joints", "pdj@0.2", "pdj@0.1", "pckh@0.5")
        cells = [_pct(r.get(k)) for k in (*keys, "pcp@0.5")]
        cells[0] = f"**{cells[0]}**"
        cells += [
            f"{r['count/images']:.0f} ({row['pdj_images']})",
            f"{r['count/pdj/limb_joints']:.0f} / {r['count/pdj']:.0f}",
            f"{row['no_detection']} ({row['no_detection_pdj']})",
            _pct(row["detected"].get("pdj@0.2/limb_joints")),
        ]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += ["", "PDJ@0.2 per joint group (left and right pooled), %:", ""]
    lines += ["| run | " + " | ".join(REPORT_GROUPS) + " |"]
    lines += ["|---|" + "---:|" * len(REPORT_GROUPS)]
    for row in rows:
        cells = [_pct(row["results"].get(f"pdj@0.2/{g}")) for g in REPORT_GROUPS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Latency per image, ms, median / mean over the images (one untimed warm-up call): "
        "the landmarker call alone (detector, landmark model and post-processing; wrapping "
        "the RGB array and reading out the landmarks included), and with reading and decoding "
        "the JPEG (`load_image`, OpenCV) before it.",
        "",
        "| run | landmarker | with JPEG decode |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['name']} | {_ms(r['detect_ms'])} | {_ms(r['total_ms'])} |" for r in rows]
    lines += [
        "",
        "Left/right check (BlazePose's left is the person's left, as LSP's): images where the "
        "predicted left joint is nearer the labelled left joint than the labelled right one "
        "(LSPet's crowd-sourced labels swap the sides on some images).",
        "",
        "| run | shoulders | hips | PDJ@0.2 limb joints with BlazePose's sides swapped |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        cells = [f"{a} / {n} ({100 * a / max(n, 1):.1f} %)" for a, n in row["sides"]]
        cells.append(_pct(row["swapped"].get("pdj@0.2/limb_joints")))
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``
    (:func:`lightning_pose.runtime.files.write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode())


def _cpus() -> str:
    return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))


def _agreement(a: np.ndarray, b: np.ndarray) -> str:
    """How two runs' landmarks ``(N, 33, 2)`` pixels agree on the 12 limb joints."""
    found_a, found_b = ~np.isnan(a).all(axis=(1, 2)), ~np.isnan(b).all(axis=(1, 2))  # (N,)
    both = found_a & found_b
    limb = [BLAZEPOSE_INDEX[LSP_SKELETON.joints[k]] for k in LSP_SKELETON.groups()["limb_joints"]]
    dist = np.linalg.norm(a[both][:, limb] - b[both][:, limb], axis=-1)  # (M, 12) pixels
    if dist.size == 0:
        return f"no image detected by both; one only on {(found_a != found_b).sum()}"
    return (
        f"both detect on {both.sum()} images, one only on {(found_a != found_b).sum()}; "
        f"limb-joint distance median {np.median(dist):.2f} px, 90th percentile "
        f"{np.percentile(dist, 90):.2f} px, max {dist.max():.1f} px"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("full", "lite", "heavy"), default="full")
    p.add_argument("--model-path", type=Path, help="an official pose_landmarker_*.task")
    p.add_argument("--max-images", type=int, help="first N validation images (default: all)")
    p.add_argument("--threads", type=int, help="XNNPACK threads (default: MediaPipe's, 1)")
    p.add_argument("--solution-check", action="store_true", help="also run the Pose solution")
    p.add_argument("--root", help="data root holding lspet/ (default: as PoseDataModule)")
    p.add_argument("--output", type=Path, default=Path("docs/results/blazepose_lspet.md"))
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.max_images is not None and args.max_images < 1:
        p.error(f"--max-images must be >= 1, got {args.max_images}")
    if args.model_path is not None and not args.model_path.is_file():
        p.error(f"--model-path {args.model_path} does not exist; expected a .task file")
    if args.model_path is not None and args.solution_check:
        p.error("--solution-check runs the wheel's own files; it cannot check --model-path")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import mediapipe as mp

    from lightning_pose.data.datamodule import PoseDataModule, split_indices
    from lightning_pose.data.readers import LSPet

    data = PoseDataModule(dataset=LSPet(), root=args.root)
    ann = data.load_annotations()
    val = split_indices(ann, data.val_every)["val"][: args.max_images]  # (N,)
    paths = [ann.image_paths[i] for i in val]
    keypoints, labelled = ann.keypoints_px[val], ann.labelled[val]  # (N, K, 2), (N, K)
    torso = (
        labelled[:, LSP_SKELETON.torso[0]] & labelled[:, LSP_SKELETON.torso[1]]
    )  # (N,) images PDJ counts

    with tempfile.TemporaryDirectory() as tmp:
        task = args.model_path or build_task(args.model, Path(tmp))
        runs = [(f"BlazePose {args.model}, PoseLandmarker", make_landmarker(task, args.threads))]
        if args.solution_check:
            runs.append((f"BlazePose {args.model}, Pose solution", make_solution(args.model)))
    # The landmarker has read the bundle; the temporary folder can go.
    if args.model_path is not None:
        model = f"{args.model_path} (sha256 {_sha256(args.model_path)}...)"
    else:
        files = ", ".join(f"{f.name} (sha256 {_sha256(f)}...)" for f in shipped_files(args.model))
        model = f"the wheel's {files}, bundled as pose_landmarker_{args.model}.task"

    load_before = os.getloadavg()[0]
    rows, landmarks = [], []
    for name, detect in runs:
        found, detect_ms, total_ms = run(detect, paths)  # (N, 33, 2), (N,), (N,)
        pred = np.stack([blazepose_to_lsp(lm) for lm in found])  # (N, K, 2)
        missing = np.isnan(found).all(axis=(1, 2))  # (N,)
        rows.append(
            {
                "name": name,
                "results": score(pred, keypoints, labelled),
                "detected": score(pred[~missing], keypoints[~missing], labelled[~missing])
                if (~missing).any()
                else {},
                "pdj_images": int(torso.sum()),
                "no_detection": int(missing.sum()),
                "no_detection_pdj": int((missing & torso).sum()),
                "detect_ms": detect_ms,
                "total_ms": total_ms,
                "swapped": score(pred[:, LSP_SKELETON.flip_permutation()], keypoints, labelled),
                "sides": [
                    side_agreement(pred, keypoints, labelled, j) for j in ("shoulder", "hip")
                ],
            }
        )
        landmarks.append(found)

    threads = str(args.threads) if args.threads else "MediaPipe's default (1 XNNPACK thread)"
    meta = {
        "images": str(len(paths)),
        "command": "`" + shlex.join([Path(sys.executable).name, *sys.argv]) + "`",
        "mediapipe": mp.__version__,
        "model": model,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git commit": provenance.commit(["bench/reproduce/blazepose.py"]),
        "CPU": f"{provenance.cpu_model()}; the process may run on CPUs {_cpus()}",
        "threads": threads + (" (Pose solution: the default)" if args.solution_check else ""),
        "load average (1 min) before / after the runs": (
            f"{load_before:.2f} / {os.getloadavg()[0]:.2f} (other work on the machine slows "
            "the latencies, not the scores)"
        ),
    }
    if args.solution_check:
        meta["PoseLandmarker vs Pose solution"] = _agreement(*landmarks)
    text = report(rows, meta)
    print(text)
    write_atomic(args.output, text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
