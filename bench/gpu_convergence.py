"""Train every model family on LSPet as far as one ~9-minute GPU call allows, run the
cascade-depth and pooling sweeps beside them, write one results table (docs/RESULTS.md, "GPU
convergence").

    bench/gpu_convergence.sh [--budget-s 540] [--lanes 5] [--smoke] [...]

(the shell script installs what the device lacks, then runs this file; the plan's pieces are in
``bench/gpu_plan.py``). Everything runs against one deadline, ``--budget-s`` after
``--started-at`` (the shell script's start):

1. **Probe** (``probe.json``), in a forked child pinned to one lane's cores, for each model
   config a job uses: the real training loader's samples/s (cached crops, augmentation, the
   lane's workers, over ``--probe-images`` images) and the model's training samples/s alone
   (one synthetic batch of the real shapes, bf16-mixed autocast, channels-last:
   ``bench/throughput.py``), and the start-up a fit pays before its clock starts.
   Then the **throughput phase** (section 2's numbers, ``bench/gpu_throughput.py``), on every
   core but the driver's before the lanes start: for ``--throughput-configs`` at each of
   ``--throughput-batches``, samples/s of the model alone and of the fit loop with each data
   path (``data.augment_on`` cpu and device), and the GPU's utilisation over each
   (``$OUT/throughput.md`` and ``.json``).
2. **Jobs**: a fit per family (:data:`FAMILIES`) and every trial of :data:`SWEEPS` (a depth-S
   cascade trial is S fits, one after another), each in the sweep runner's trial folder with its
   command (:mod:`lightning_pose.cli.sweep`; the W&B logger left out: the device has no wandb),
   each augmenting its batches on the GPU (``--augment-on device``, the default: the crop cache
   and the batched warp of :mod:`lightning_pose.data.device_augment`; ``cpu``: the loader's).
   They run in ``--lanes`` concurrent lanes that share the GPU, each lane pinned to its own
   cores; jobs go to lanes most fits first, to the least loaded lane (LPT).
3. **Budget per fit**, when it starts: its lane's time left (to the deadline less
   ``--reserve-s``) / the lane's fits left, less the start-up the probe measured, is its
   ``trainer.max_time``; its epochs are what that time buys (every epoch validates:
   ``ReduceLROnPlateau`` monitors ``val/loss``), so a cosine schedule ends with the fit: at the
   lane rate the config's finished fits achieved, once one has finished, else at
   min(loader, model / lanes) samples/s over the training and validation images, a guess
   that was 2-3x low on the H200 (``gpu_plan.epochs_for``). A fit still running at the
   deadline less ``--reserve-s`` is stopped with SIGTERM (it saves ``last.ckpt``) and its row
   marked partial.
4. **Table**, rewritten after every job: ``$OUT/gpu_convergence.md`` and ``.csv``, one row per
   job: PCK@0.2 on the limb joints (``val/pdj@0.2/limb_joints``, as ``docs/RESULTS.md``
   reports it), PDJ@0.05/0.1/0.2, PCKh@0.5, PCP@0.5 of its last validation, epochs, samples,
   wall seconds, the GPU; and each sweep's ``results.md`` as the sweep runner writes it.

Each job is a forked child of this process, which imports the package once (about 8 s of CPU
a fit saved); this process never touches CUDA, so the children can.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import runpy
import shlex
import sys
import time
from pathlib import Path

from gpu_plan import (
    FAMILIES,
    PROBE_ARGS,
    SWEEPS,
    TAIL_S,
    Job,
    assign_lanes,
    batch_args,
    budget_args,
    common_args,
    csv_only,
    lane_cores,
    load_seeded_sweep,
    make_jobs,
    record_achieved,
)

from lightning_pose.cli.sweep import (
    latest_results,
    result_keys,
    trial_config,
    trial_metrics,
    write_results,
)
from lightning_pose.data.datamodule import split_indices
from lightning_pose.reports.tables import read_declarations
from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]

METRICS = {
    "PCK@0.2 limb joints": "val/pdj@0.2/limb_joints",
    "PDJ@0.05": "val/pdj@0.05",
    "PDJ@0.1": "val/pdj@0.1",
    "PDJ@0.2": "val/pdj@0.2",
    "PCKh@0.5": "val/pckh@0.5",
    "PCP@0.5": "val/pcp@0.5",
}
COLUMNS = ["job", "status", *METRICS, "epochs", "samples", "wall s", "max_time s", "GPU"]


def run_module(command: list[str], log: Path, cores: list[int], env: dict[str, str]) -> None:
    """In a forked child: ``python -m MODULE ARGS`` of ``command`` in the repository, pinned
    to ``cores``, its output to ``log``."""
    import torch

    os.chdir(REPO)
    os.sched_setaffinity(0, cores)
    torch.set_num_threads(len(cores))
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # Python-level writes too
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    module = command[command.index("-m") + 1]
    sys.argv = [module, *command[command.index("-m") + 2 :]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def fork(target, *args) -> multiprocessing.Process:
    """``target(*args)`` in a forked child (started)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised in the driver: its forked jobs cannot use it")
    sys.stdout.flush()
    sys.stderr.flush()
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def job_row(job: Job, n_train: int, batch: int = 1) -> dict:
    """``job.row`` with the metrics of its last validation and the samples of all its fits
    (``time/train_images`` of each fit's last validation: steps x batch); epochs count the
    training loader's ``n_train // batch`` full batches (it drops the last, partial one)."""
    results = latest_results(job.folder)
    metrics = trial_metrics({"results": results}) if results else {}
    samples = 0
    for path in job.folder.rglob("metrics.csv"):
        with open(path, newline="") as f:
            seen = [r["time/train_images"] for r in csv.DictReader(f) if r.get("time/train_images")]
        samples += int(float(seen[-1])) if seen else 0
    row = job.row | {name: metrics.get(key) for name, key in METRICS.items()}
    row |= {
        "samples": samples,
        "epochs": round(samples / (max(1, n_train // batch) * batch), 1),
        "metrics": metrics,
    }
    row["results"] = str(results or job.folder)
    return row


def keep_outputs(job: Job, out: Path) -> list[Path]:
    """Copy the job's per-image scores of its last validation (``per_image_val.csv`` and, for
    a model of several stages, each earlier stage's ``per_image_val_stage<s>.csv``) and each
    fit's ``metrics.csv`` (its validation curve) flat into ``out/per_image/`` and
    ``out/curves/`` (a device call returns files only a few folders deep):
    ``lightning-pose report intervals``, ``bench/reproduce/stage_curves.py`` and
    ``bench/reproduce/scaling_curve.py`` read them back here. Returns the files written."""
    stem = job.name.replace("/", "__")
    results = Path(job.row.get("results") or job.folder)
    pairs = [
        (scores, out / "per_image" / f"{stem}{scores.stem[len('per_image_val') :]}.csv")
        for scores in sorted(results.glob("per_image_val*.csv"))
    ]
    for i, path in enumerate(sorted(job.folder.rglob("metrics.csv"))):
        pairs.append((path, out / "curves" / f"{stem}{f'__fit{i + 1}' if i else ''}.csv"))
    written = []
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, source.read_bytes())
        written.append(target)
    return written


def markdown(rows: list[dict], probe: dict, header: str) -> str:
    """The results table (metrics in %) and the probe's table."""
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for row in rows:
        cells = []
        for c in COLUMNS:
            value = row.get(c)
            if c in METRICS:
                cells.append("" if value is None else f"{100 * value:.1f}")
            elif c == "epochs" and "planned epochs" in row:
                cells.append(f"{row.get('epochs', 0)} of {row['planned epochs']}")
            else:
                cells.append("" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Probe (samples/s; model alone on the device, loader with one lane's workers):"]
    lines += ["", "| model config | input px | batch | workers | loader | model | start-up s "
              "| achieved a lane |"]  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|")
    for name, r in probe.get("configs", {}).items():
        achieved = r.get("achieved_samples_s")
        lines.append(
            f"| {name} | {r['input']} | {r['batch']} | {r['workers']} | "
            f"{r['loader_samples_s']:.0f} | {r['model_samples_s']:.0f} | {r['startup_s']:.1f} | "
            f"{'' if achieved is None else f'{achieved:.0f}'} |"
        )
    return "\n".join(lines) + "\n"


def write_table(out: Path, rows: list[dict], probe: dict, header: str) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(out / "gpu_convergence.csv", table.getvalue().encode())
    write_bytes_atomic(out / "gpu_convergence.md", markdown(rows, probe, header).encode())


def write_sweeps(
    jobs: list[Job], out: Path, sweeps: list[str], seeds: list[int] | None = None
) -> None:
    """Each sweep's results.md/csv/png in its folder (the runner's :func:`write_results`),
    its results.md also to ``out/sweep_NAME.md``."""
    for path in sweeps:
        config = load_seeded_sweep(path, seeds)
        name = config.get("name") or Path(path).stem
        rows = []
        for job in (j for j in jobs if j.sweep == name and j.row.get("status")):
            metrics = job.row.get("metrics", {})
            row = {"trial": job.folder.name, **job.values, "status": job.row["status"]}
            metric = (config.get("metric") or {}).get("name")
            results = job.row.get("results")
            declared = read_declarations(Path(results)) if results else ([], 1)
            row |= {k: metrics[k] for k in result_keys(*declared, metric) if k in metrics}
            if metric in metrics:
                row[metric] = metrics[metric]
            # a trial that did not run (the deadline) has no seconds or results: its row says so
            rows.append(row | {"seconds": job.row.get("wall s"), "results": results or ""})
        if rows:
            folder = jobs[0].folder.parents[1] / name
            write_results(folder, rows, list(config["parameters"]), config)
            text = (folder / "results.md").read_text()
            write_bytes_atomic(out / f"sweep_{name}.md", text.encode())


def probe(configs: list[str], opts: argparse.Namespace, cores: list[int], path: Path) -> None:
    """In a forked child pinned to one lane's ``cores``: for each model config, the training
    loader's and the model's samples/s and a fit's start-up, to ``path`` (JSON)."""
    import torch
    from throughput import build, measure, synthetic_loader

    os.sched_setaffinity(0, cores)
    torch.set_num_threads(len(cores))
    sys.argv = sys.argv[:1]  # LightningCLI is given its arguments
    gpu = torch.cuda.get_device_name(0) if opts.accelerator == "gpu" else "none (CPU)"
    result: dict = {"gpu": gpu, "configs": {}}
    for config in configs:
        start = time.perf_counter()
        overrides = common_args(opts, opts.workers) + [f"--data.max_samples={opts.probe_images}"]
        overrides += batch_args(config, opts.batch_size, opts.lr_scaling)
        overrides += PROBE_ARGS.get(config, [])
        data_config = opts.work / "lspet.yaml"  # make_jobs's, without W&B
        model, dm = build(Path(config).stem, opts.data_root, overrides, data_config)
        built = time.perf_counter()
        dm.trainer = None
        dm.setup("fit")  # the crop cache of probe_images training and validation images
        cached_s = (time.perf_counter() - built) / (len(dm.splits["train"]) + len(dm.splits["val"]))
        split = split_indices(dm.load_annotations(), dm.val_every)
        n_train, n_val = (min(len(split[s]), opts.max_samples or 10**9) for s in ("train", "val"))
        batches = iter(dm.train_dataloader())
        next(batches)  # the workers start: not timed
        samples, timed = 0, time.perf_counter()
        for batch in batches:  # the rest of one pass at most: hand-timed, the workers run ahead
            samples += int(batch["index"].shape[0])  # device path: no image yet
            if time.perf_counter() - timed >= opts.probe_s:
                break
        loader_rate = samples / max(time.perf_counter() - timed, 1e-9)
        model_rate = measure(
            model, synthetic_loader(dm, 5), 5, opts.probe_s, True, opts.precision,
            accelerator=opts.accelerator,
        )  # fmt: skip
        result["configs"][config] = {
            "input": dm.input_size,
            "batch": dm.batch_size,
            "workers": dm.num_workers,
            "loader_samples_s": loader_rate,
            "model_samples_s": model_rate,
            "startup_s": built - start + cached_s * (n_train + n_val),
        }
        result |= {"n_train": n_train, "n_val": n_val}
        print(f"probe {config}: {result['configs'][config]}", flush=True)
        del model, dm, batches
        if opts.accelerator == "gpu":
            torch.cuda.empty_cache()
    path.write_text(json.dumps(result, indent=1))


def throughput(opts: argparse.Namespace, cores: list[int], argv: list[str]) -> None:
    """In a forked child pinned to ``cores``: section 2's measurements
    (``bench/gpu_throughput.py``: model alone, fit loop with each data path, utilisation) to
    ``$OUT/throughput.json`` and ``.md``."""
    import torch
    from gpu_throughput import header, markdown, measure_paths

    from lightning_pose.reports.provenance import commit

    os.sched_setaffinity(0, cores)
    torch.set_num_threads(len(cores))
    gpu = torch.cuda.get_device_name(0) if opts.accelerator == "gpu" else "none (CPU)"
    rows = measure_paths(
        opts.throughput_configs, opts.throughput_batches, opts, opts.out / "throughput.json"
    )
    text = markdown(rows, header(opts, gpu, commit(), argv))
    write_bytes_atomic(opts.out / "throughput.md", text.encode())
    print(text, flush=True)


def run_jobs(lanes: list[list[Job]], cores: list[list[int]], opts, probe: dict, write) -> None:
    """Run each lane's jobs one after another, the lanes side by side, each fit sized when it
    starts (:func:`budget_args`); stop what still runs at the deadline less ``reserve_s``.
    ``write()`` rewrites the table after every job."""
    stop_at = opts.deadline - opts.reserve_s
    env = {"WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    queues, running = [list(lane) for lane in lanes], {}
    while any(queues) or running:
        for i, queue in enumerate(queues):
            if i in running or not queue:
                continue
            job = queue.pop(0)
            fits_left = job.fits + sum(j.fits for j in queue)
            fit_s = (stop_at - time.time()) / fits_left
            if fit_s < probe["configs"][job.model_config]["startup_s"] + TAIL_S + opts.min_fit_s:
                job.row |= {"status": "not run: too little time left", "GPU": probe["gpu"]}
                continue
            job.folder.mkdir(parents=True, exist_ok=True)
            yaml_text = trial_config(job.folder, job.sweep or "families", "lightning_pose")
            (job.folder / "trial.yaml").write_text(csv_only(yaml_text))
            command = job.command + common_args(opts, opts.workers)
            command += batch_args(job.model_config, opts.batch_size, opts.lr_scaling)
            command += budget_args(job, probe, opts, fit_s)
            (job.folder / "command.txt").write_text(shlex.join(command) + "\n")
            print(f"lane {i}: start {job.name} ({fit_s:.0f} s a fit)", flush=True)
            process = fork(run_module, command, job.folder / "log.txt", cores[i], env)
            running[i] = (job, process, time.time())
        late = time.time() >= stop_at
        if late:
            for _, process, _ in running.values():
                process.terminate()  # SIGTERM: the fit saves last.ckpt and stops
        grace_end = time.time() + (opts.reserve_s / 2 if late else 0)
        for i, (job, process, started) in list(running.items()):
            process.join(timeout=max(0.0, grace_end - time.time()))
            if process.is_alive() and late:
                process.kill()
                process.join()
            if process.is_alive():
                continue
            del running[i]
            batch = probe["configs"].get(job.model_config, {}).get("batch", 1)
            job.row |= job_row(job, probe["n_train"], batch)
            keep_outputs(job, opts.out)
            job.row |= {"wall s": round(time.time() - started), "GPU": probe["gpu"]}
            code = process.exitcode
            if late and code != 0:
                job.row["status"] = "partial: stopped at the deadline"
            elif code != 0:
                job.row["status"] = f"failed: exit {code} (see {job.folder / 'log.txt'})"
            elif job.row[next(iter(METRICS))] is None:
                job.row["status"] = "failed: no validation"
            else:
                job.row["status"] = "ok"
                rates = probe["configs"][job.model_config]
                record_achieved(rates, job.row["samples"], job.row["wall s"], job.fits)
            print(f"lane {i}: {job.name} {job.row['status']} in {job.row['wall s']} s", flush=True)
            write()
        if late:
            for queue in queues:
                for job in queue:
                    job.row |= {"status": "not run: deadline", "GPU": probe["gpu"]}
                queue.clear()
        time.sleep(0.2)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_convergence" / "out")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "gpu_convergence")
    data_root = os.environ.get("LIGHTNING_POSE_DATA_ROOT", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data-root", default=data_root, help="holding lspet/")
    parser.add_argument("--started-at", type=float, default=None, help="epoch s (the script's)")
    parser.add_argument("--budget-s", type=float, default=540.0, help="wall from --started-at")
    parser.add_argument("--reserve-s", type=float, default=30.0, help="kept for stop and table")
    parser.add_argument("--lanes", type=int, default=5, help="jobs side by side on the GPU")
    parser.add_argument("--workers", type=int, default=None, help="default: lane cores - 1")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--sweeps", nargs="*", default=list(SWEEPS))
    parser.add_argument("--sweep-count", type=int, default=None, help="first N trials of each")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=None,
        help="run each sweep setting once per seed (seed_everything); results pool them",
    )
    parser.add_argument("--probe-images", type=int, default=1024)
    parser.add_argument("--probe-s", type=float, default=3.0, help="seconds per probe timing")
    parser.add_argument("--probe-max-s", type=float, default=120.0)
    parser.add_argument("--min-fit-s", type=float, default=20.0, help="training a fit needs")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--max-samples", type=int, default=None, help="images per split")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the configs'")
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="times the probe's samples/s guess (gpu_plan.epochs_for); 2-3x low on the H200",
    )
    parser.add_argument(
        "--lr-scaling", choices=["sqrt", "linear", "none"], default="sqrt",
        help="the learning rate with --batch-size (gpu_plan.batch_args)",
    )  # fmt: skip
    parser.add_argument(
        "--augment-on", choices=["device", "cpu"], default="device",
        help="every fit's data.augment_on: the batched augmentation on the GPU, or the loader's",
    )  # fmt: skip
    parser.add_argument(
        "--throughput-batches", type=int, nargs="*", default=[32, 256],
        help="batch sizes of the throughput phase (bench/gpu_throughput.py); none: skip it",
    )  # fmt: skip
    parser.add_argument(
        "--throughput-configs", nargs="*", default=["conf/model/heatmap_budget.yaml"]
    )
    parser.add_argument("--throughput-s", type=float, default=8.0, help="timed s a measurement")
    parser.add_argument("--throughput-warmup", type=int, default=10, help="untimed steps")
    parser.add_argument("--throughput-max-s", type=float, default=180.0)
    parser.add_argument("--smoke", action="store_true", help="tiny, on the CPU (the test)")
    opts = parser.parse_args(argv)
    opts.accelerator, opts.precision, opts.smoke_args = "gpu", "bf16-mixed", []
    if opts.smoke:  # tiny input, a handful of images, one epoch, two lanes on the CPU
        opts.accelerator, opts.precision, opts.lanes, opts.workers = "cpu", "32-true", 2, 0
        opts.max_samples, opts.probe_images, opts.probe_s = opts.max_samples or 16, 16, 0.1
        opts.max_epochs, opts.sweep_count, opts.min_fit_s = 1, opts.sweep_count or 2, 1.0
        opts.smoke_args = ["--data.input_size=64", "--data.batch_size=4"]
        opts.throughput_batches, opts.throughput_s, opts.throughput_warmup = [4], 0.1, 1
    if opts.max_samples:
        opts.smoke_args.append(f"--data.max_samples={opts.max_samples}")
    opts.deadline = (opts.started_at or time.time()) + opts.budget_s
    return opts


def main(argv: list[str] | None = None) -> int:
    """Probe, run the jobs, write the tables; 0 when every job ran to its end ("ok")."""
    from lightning_pose.reports.provenance import commit

    opts = parse(sys.argv[1:] if argv is None else argv)
    if not (Path(opts.data_root) / "lspet" / "joints.mat").is_file():
        print(f"error: no LSPet at {opts.data_root}/lspet (--data-root); nothing was trained")
        return 2
    opts.out.mkdir(parents=True, exist_ok=True)
    opts.work.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(opts.work, opts.families, opts.sweeps, opts.sweep_count, opts.seeds)
    cores = lane_cores(sorted(os.sched_getaffinity(0)), opts.lanes)
    if opts.workers is None:
        opts.workers = max(1, len(cores[0]) - 1)
    configs = sorted({job.model_config for job in jobs})
    prober = fork(probe, configs, opts, cores[0], opts.work / "probe.json")
    prober.join(timeout=opts.probe_max_s)
    if prober.is_alive():
        prober.kill()
    if prober.exitcode != 0:
        print(f"error: the probe failed (exit {prober.exitcode}); nothing was trained")
        return 1
    probe_result = json.loads((opts.work / "probe.json").read_text())
    if opts.throughput_batches:  # before the lanes start: the whole machine
        opts.data_config = opts.work / "lspet.yaml"  # make_jobs's, without W&B
        all_cores = sorted(os.sched_getaffinity(0))
        spare = all_cores[1:] or all_cores
        argv_ = sys.argv[1:] if argv is None else argv
        measuring = fork(throughput, opts, spare, argv_)
        measuring.join(timeout=opts.throughput_max_s)
        if measuring.is_alive():
            measuring.kill()
            measuring.join()
        if measuring.exitcode != 0:
            print(f"throughput phase: exit {measuring.exitcode} (see the log); the fits go on")
    write_bytes_atomic(opts.out / "probe.json", json.dumps(probe_result, indent=1).encode())
    header = (
        f"# GPU convergence on LSPet\n\nCommit {commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {probe_result['gpu']}, "
        f"{opts.precision}, channels-last, cached crops; {opts.lanes} lanes side by side, "
        f"{len(cores[0])} cores and {opts.workers} loader workers each; budget "
        f"{opts.budget_s:g} s ({opts.reserve_s:g} s reserved). Metrics: %, of the last "
        f"validation ({probe_result['n_val']} images). Epochs: done of planned (all fits of a "
        "job); samples: training images seen.\n\nCommand: `bench/gpu_convergence.sh "
        f"{shlex.join(sys.argv[1:] if argv is None else argv)}`"
    )

    def write() -> None:
        rows = [{"status": "not finished"} | job.row | {"job": job.name} for job in jobs]
        write_table(opts.out, rows, probe_result, header)

    run_jobs(assign_lanes(jobs, opts.lanes), cores, opts, probe_result, write)
    write()
    # the probe's file again, with the lane rates the fits achieved
    write_bytes_atomic(opts.out / "probe.json", json.dumps(probe_result, indent=1).encode())
    write_sweeps(jobs, opts.out, opts.sweeps, opts.seeds)
    print((opts.out / "gpu_convergence.md").read_text())
    return 0 if all(job.row.get("status") == "ok" for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
