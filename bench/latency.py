"""Predict latency per image on the CPU, for each model variant: batch 1 and batched, JPEG
decode included, channels-last off and on side by side.

Each variant is built by the CLI itself (``lightning_pose.cli.main(run=False)`` with
``-c conf/lspet.yaml -c conf/model/<variant>.yaml``), so what is timed is exactly the configured
model. Per image, as ``predict`` does it (``ImageFolderDataset``, the predict loader's
``default_collate``, ``PoseEstimator.predict_step``): read and decode the JPEG
(``data.dataset.load_image``), letterbox the whole image to the input size
(``whole_image_box``, ``crop_image``; also the ``image_hr`` view where ``data.highres_factor``
> 1), to a tensor, the model's ``estimate`` in eval mode under ``torch.inference_mode()``,
decoded to original-image pixels (``codecs.box.decode``). Timed:

* end to end at batch 1 (and its load + crop part on its own);
* end to end at ``--batch-size`` (time per image = batch time / batch size);
* the model alone (``estimate``) at batch 1, on the batch just loaded.

The two memory formats (contiguous NCHW, and model and input in ``torch.channels_last``), with
``--compiled`` the channels-last model with its networks compiled as the
``CompiledInference`` callback compiles them (``torch.compile``, weights frozen; compilation
happens in the warm-up), and with ``--onnxruntime`` the model exported by
``lightning-pose export`` (:func:`lightning_pose.cli.export.export_onnx`, to a temporary file) and
run by ONNX Runtime with ``--threads`` intra-op threads as ``predict --onnx`` runs it, are
timed alternately, image by image and batch by batch (the order
flips every time), so that the machine's noise falls on all alike. Images: the LSPet
validation split (every 10th image), the first ``--max-images``. The table goes to stdout
and, atomically, to ``--output``.

Usage (from the repository root; one process per core, nothing else running):
    taskset -c 0,1 .venv/bin/python bench/latency.py --threads 2
    .venv/bin/python bench/latency.py --variants conf/model/deeppose.yaml --ckpt best.ckpt
    .venv/bin/python bench/latency.py --variants conf/model/heatmap_budget.yaml --compiled
    .venv/bin/python bench/latency.py --variants conf/model/heatmap_budget.yaml --onnxruntime
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from lightning_pose.callbacks import ChannelsLast
from lightning_pose.callbacks.compiled_inference import compile_inference_modules
from lightning_pose.cli.configured import lspet_model
from lightning_pose.cli.export import export_onnx
from lightning_pose.cli.onnx_inference import OnnxEstimate
from lightning_pose.data.datamodule import PoseDataModule, resolve_data_root, split_indices
from lightning_pose.data.dataset import ImageFolderDataset
from lightning_pose.models.base import PoseEstimator
from lightning_pose.models.heatmap import HeatmapPose
from lightning_pose.reports import provenance
from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]

# Model configs left out by default: the same network as multitask.yaml, trained differently.
SKIPPED = ("multitask_detection_pretrain.yaml",)
FORMATS = ("contiguous", "channels_last")
COMPILED = "channels_last+compiled"
ONNXRUNTIME = "onnxruntime"


def default_variants() -> list[Path]:
    return sorted(p for p in (REPO / "conf" / "model").glob("*.yaml") if p.name not in SKIPPED)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        nargs="+",
        type=Path,
        default=None,
        help="model configs (default: conf/model/*.yaml but " + ", ".join(SKIPPED) + ")",
    )
    parser.add_argument("--max-images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=10, help="batch-1 warm-up iterations")
    parser.add_argument("--warmup-batches", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--flip-test", action="store_true", help="also time each heat-map variant with flip_test on"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help=f"also time {COMPILED} (the CompiledInference callback's torch.compile)",
    )
    parser.add_argument(
        "--onnxruntime",
        action="store_true",
        help=f"also time {ONNXRUNTIME} (the model exported to ONNX, as predict --onnx runs it)",
    )
    parser.add_argument(
        "--ckpt",
        type=Path,
        default=None,
        help="trained weights (one variant only; default: the config's init)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding lspet/ (default: as the CLI resolves it)",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="ARG",
        help="extra CLI argument for every variant, e.g. "
        "--override=--data.input_size=128 (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / "latency.md")
    args = parser.parse_args(argv)
    args.variants = args.variants or default_variants()
    if args.ckpt is not None and len(args.variants) != 1:
        parser.error(f"--ckpt {args.ckpt} needs exactly one --variants entry")
    for name in ("max_images", "batch_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def build(variant: Path, args: argparse.Namespace) -> tuple[PoseEstimator, PoseDataModule]:
    """The variant's model (eval mode, ``--ckpt`` weights if given) and datamodule, as the CLI
    instantiates them (:func:`lightning_pose.cli.configured.lspet_model`)."""
    return lspet_model(variant, args.override, args.ckpt, args.data_root)


def validation_images(datamodule: PoseDataModule, max_images: int) -> list[Path]:
    """The first ``max_images`` images of the validation split, as the CLI splits the data."""
    annotations = datamodule.load_annotations()
    indices = split_indices(annotations, datamodule.val_every)["val"][:max_images]
    return [annotations.image_paths[i] for i in indices]


def formats(args: argparse.Namespace) -> tuple[str, ...]:
    return (*FORMATS, *([COMPILED] * args.compiled), *([ONNXRUNTIME] * args.onnxruntime))


def load_batch(dataset: ImageFolderDataset, items: list[int], fmt: str) -> dict:
    """What the predict loader yields for ``items`` (plus the ``ChannelsLast`` conversion)."""
    batch = default_collate([dataset[i] for i in items])
    if fmt not in ("contiguous", ONNXRUNTIME):
        ChannelsLast.convert_batch(batch)
    return batch


def time_variant(
    models: dict[str, PoseEstimator], dataset: ImageFolderDataset, args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """Seconds per image, ``{format: {measure: [...]}}``, the formats alternating.

    Measures: ``e2e_b1``, ``load_b1`` (its read + decode + crop + collate part), ``model_b1``
    (``estimate`` alone, on the same batch) and ``e2e_batched`` (batch time / batch size).

    Hand-timed, not ``torch.utils.benchmark.Timer``: each time is one call on a different
    image (the report gives the median, mean and 90th percentile over the images, not the mean
    of one statement repeated on one input), split into the stages of that one call, with the
    formats alternating image by image; a ``Timer`` repeats one statement.
    """
    n, bs, fmts = len(dataset), args.batch_size, formats(args)
    times = {f: {"e2e_b1": [], "load_b1": [], "model_b1": [], "e2e_batched": []} for f in fmts}

    def one_image(i: int, fmt: str, record: bool) -> None:
        model = models[fmt]
        t0 = time.perf_counter()
        batch = load_batch(dataset, [i], fmt)
        t1 = time.perf_counter()
        model.predict_step(batch, 0)  # estimate + decode to original pixels
        t2 = time.perf_counter()
        model.estimate(batch)
        t3 = time.perf_counter()
        if record:
            times[fmt]["e2e_b1"].append(t2 - t0)
            times[fmt]["load_b1"].append(t1 - t0)
            times[fmt]["model_b1"].append(t3 - t2)

    def one_batch(j: int, fmt: str, record: bool) -> None:
        items = [(j * bs + k) % n for k in range(bs)]  # cycle: every batch is full
        t0 = time.perf_counter()
        models[fmt].predict_step(load_batch(dataset, items, fmt), 0)
        if record:
            times[fmt]["e2e_batched"].append((time.perf_counter() - t0) / bs)

    with torch.inference_mode():
        for step in range(args.warmup + n):
            for fmt in fmts[:: 1 if step % 2 == 0 else -1]:
                one_image((step - args.warmup) % n, fmt, record=step >= args.warmup)
        for step in range(args.warmup_batches + -(-n // bs)):
            for fmt in fmts[:: 1 if step % 2 == 0 else -1]:
                one_batch(step - args.warmup_batches, fmt, record=step >= args.warmup_batches)
    return times


def busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used since boot, hypervisor steal included
    (``/proc/stat``: user, nice, system, irq, softirq, steal); NaN where it cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(seconds)
    return {
        "median": float(np.median(ms)),
        "mean": float(ms.mean()),
        "p90": float(np.percentile(ms, 90)),
    }


def onnxruntime_model(
    model: PoseEstimator, datamodule: PoseDataModule, args: argparse.Namespace, folder: Path
) -> PoseEstimator:
    """A copy of ``model`` whose ``estimate`` is its ONNX export run by ONNX Runtime (as
    ``predict --onnx`` runs it); the file goes to ``folder``."""
    onnx_model = copy.deepcopy(model)
    path = folder / f"{len(list(folder.iterdir()))}.onnx"
    export_onnx(
        onnx_model, datamodule.skeleton, datamodule.input_size, datamodule.highres_factor,
        args.ckpt, path,
    )  # fmt: skip
    onnx_model.estimate = OnnxEstimate(path, datamodule.input_size, threads=args.threads)
    return onnx_model


def measure(variant: Path, args: argparse.Namespace) -> list[dict]:
    """One table row per memory format for ``variant`` (and, with ``--flip-test``, as many
    again with flip test on, for a heat-map model)."""
    model, datamodule = build(variant, args)
    paths = validation_images(datamodule, args.max_images)
    dataset = ImageFolderDataset(paths, datamodule.input_size, datamodule.highres_factor)
    models = {
        "contiguous": model,
        "channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last),
    }
    if args.compiled:
        models[COMPILED] = copy.deepcopy(models["channels_last"])
        compile_inference_modules(models[COMPILED])
    params = sum(p.numel() for p in model.parameters()) / 1e6
    rows = []
    for flip_test in (
        [False, True] if args.flip_test and isinstance(model, HeatmapPose) else [False]
    ):
        name = variant.stem + (" +flip" if flip_test else "")
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        for m in models.values():
            if isinstance(m, HeatmapPose):
                m.flip_test = flip_test
        onnx_dir = None
        if args.onnxruntime:  # exported after flip_test is set: it is traced into the graph
            onnx_dir = tempfile.TemporaryDirectory()
            models[ONNXRUNTIME] = onnxruntime_model(model, datamodule, args, Path(onnx_dir.name))
        busy, own, wall = busy_cpu_seconds(), time.process_time(), time.perf_counter()
        times = time_variant(models, dataset, args)
        if onnx_dir is not None:
            onnx_dir.cleanup()
        # Cores' worth of CPU that anything else took while this variant was timed.
        other = busy_cpu_seconds() - busy - (time.process_time() - own)
        other_load = max(other, 0.0) / (time.perf_counter() - wall)
        rows += [
            {
                "variant": name,
                "input": datamodule.input_size,
                "params_m": params,
                "format": fmt,
                "images": len(dataset),
                "root": resolve_data_root(datamodule.root).resolve(),
                "other_load": other_load,
                **{key: stats_ms(values) for key, values in times[fmt].items()},
            }
            for fmt in formats(args)
        ]
    return rows


def markdown_table(rows: list[dict], batch_size: int) -> str:
    head = [
        "variant", "input px", "params (M)", "memory format",
        "e2e b1 median", "e2e b1 mean", "e2e b1 p90", "load+crop b1 median",
        "model b1 median", "model b1 mean", "model b1 p90",
        f"e2e b{batch_size} median", f"e2e b{batch_size} mean", "other load (cores)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"], str(r["input"]), f"{r['params_m']:.1f}", r["format"]]
        cells += [f"{r['e2e_b1'][k]:.1f}" for k in ("median", "mean", "p90")]
        cells.append(f"{r['load_b1']['median']:.1f}")
        cells += [f"{r['model_b1'][k]:.1f}" for k in ("median", "mean", "p90")]
        cells += [f"{r['e2e_batched'][k]:.1f}" for k in ("median", "mean")]
        cells.append(f"{r['other_load']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speedup_table(rows: list[dict], batch_size: int, base: str, faster: str) -> str:
    """``base`` median / ``faster`` median, per variant that has both formats."""
    keys = {"e2e b1": "e2e_b1", "model b1": "model_b1", f"e2e b{batch_size}": "e2e_batched"}
    lines = ["| variant | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    by_variant: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], {})[r["format"]] = r
    for name, pair in by_variant.items():
        if base not in pair or faster not in pair:
            continue
        ratios = [pair[base][k]["median"] / pair[faster][k]["median"] for k in keys.values()]
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}x" for x in ratios) + " |")
    return "\n".join(lines)


def report(rows: list[dict], args: argparse.Namespace, argv: list[str], run: str) -> str:
    commit, cpu = provenance.commit(), provenance.cpu_model()
    cpus = sorted(os.sched_getaffinity(0))
    weights = f"`{args.ckpt}`" if args.ckpt else "each config's initialisation (random/ImageNet)"
    n, root = (rows[0]["images"], rows[0]["root"]) if rows else (0, "-")
    batches = -(-n // args.batch_size)
    facts = [
        f"Command: `python bench/latency.py {shlex.join(argv)}`",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Commit: {commit}",
        f"CPU: {cpu}; {os.cpu_count()} logical CPUs, this process pinned to {cpus}",
        f"Threads: torch.set_num_threads({args.threads}); torch {torch.__version__}",
        f"Images timed: {n} of the LSPet validation split (every 10th image; `{root}`), each "
        f"once per measure and memory format; batched: {batches} batches of {args.batch_size}, "
        "cycling through the images",
        f"Warm-up, not timed: {args.warmup} batch-1 iterations and {args.warmup_batches} "
        "batches per variant and memory format",
        f"Weights: {weights}",
        run,
    ]
    bullets = "\n".join(f"- {fact}" for fact in facts)
    compiled_text = ""
    if args.onnxruntime:
        compiled_text += f"""
*{ONNXRUNTIME}*: the model exported by `lightning-pose export` (ONNX, opset 18, trunk
normalisation and heat-map decoding inside the graph) and run by ONNX Runtime
{ort_version()} on the CPU with {args.threads} intra-op threads, as `predict --onnx` runs it;
its input is contiguous (NCHW). ONNX Runtime speed-up (contiguous median / onnxruntime median):

{speedup_table(rows, args.batch_size, "contiguous", ONNXRUNTIME)}
"""
    if args.compiled:
        compiled_text += f"""
*{COMPILED}*: the channels-last model with the networks of its `inference_modules()`
compiled by `torch.compile` with Inductor's weight freezing, as the `CompiledInference`
callback does at predict; the compilations (one per input shape) fall in the warm-up.
Compiled speed-up (channels-last median / compiled median):

{speedup_table(rows, args.batch_size, "channels_last", COMPILED)}
"""
    return f"""# Predict latency per image on the CPU

Written by `bench/latency.py`; regenerate rather than edit.

{bullets}

Milliseconds per image. *e2e*: read + decode the JPEG, letterbox crop to the input size, to a
tensor, collate, `predict_step` (`estimate` in eval mode under `torch.inference_mode()`, decoded
to original-image pixels), as `predict --data.predict.image_dir` does it
(`ImageFolderDataset`; on the test split `predict` crops the same way, but for the cascade's
`image`, resized from
`image_hr`), serially in one process (the CLI's loader decodes in `data.num_workers` worker
processes, overlapping the model). *load+crop*: the part
of e2e before the model. *model*: `estimate` alone on the same batch. Batch-{args.batch_size}
rows: batch time / {args.batch_size}. *channels_last*: model and input in
`torch.channels_last` (what the `ChannelsLast` callback does), timed alternately with
contiguous (NCHW), image by image. *other load*: CPU time that every other process (and the
hypervisor's steal) took while the variant was timed, in cores (0 on a quiet machine; this
machine is shared, and a row with a load of a core or more is slowed down).

{markdown_table(rows, args.batch_size)}

Channels-last speed-up (contiguous median / channels-last median):

{speedup_table(rows, args.batch_size, "contiguous", "channels_last")}
{compiled_text}"""


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``
    (:func:`lightning_pose.runtime.files.write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode())


def main(argv: list[str] | None = None) -> list[dict]:
    """Time every variant, print the report and write it to ``--output``; returns the rows."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads)
    load_start, t0 = os.getloadavg(), time.perf_counter()
    rows = []
    for variant in args.variants:
        rows += measure(variant, args)
    loads = [" / ".join(f"{x:.1f}" for x in load) for load in (load_start, os.getloadavg())]
    run = (
        f"Run: {(time.perf_counter() - t0) / 60:.1f} min; load average (1, 5, 15 min) "
        f"{loads[0]} at the start, {loads[1]} at the end (this run alone adds ~{args.threads})"
    )
    text = report(rows, args, argv, run)
    print(text)
    write_atomic(args.output, text)
    return rows


if __name__ == "__main__":
    main()
