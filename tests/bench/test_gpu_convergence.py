"""bench/gpu_convergence.sh: the plan (bench/gpu_plan.py: lanes, cores, epochs, the arguments
that size a fit), the deadline, and the whole script at tiny scale on the CPU (``--smoke``),
checked by the table it writes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import load
from tests.conftest import write_lspet

REPO = Path(__file__).resolve().parents[2]
gc = load("gpu_convergence")  # with bench/ on sys.path, as the script runs
import gpu_plan as plan  # noqa: E402  (the module gpu_convergence imports)


def job(name: str, fits: int, sweep: str | None = "s") -> plan.Job:
    return plan.Job(name, sweep, "conf/model/deeppose.yaml", [], Path(name), fits)


def test_lanes_take_the_most_fits_first_and_families_before_trials() -> None:
    jobs = [job("f1", 1, None), job("t1", 1), job("c3", 3), job("c2", 2), job("f2", 1, None)]
    lanes = plan.assign_lanes(jobs, 2)
    assert [[j.name for j in lane] for lane in lanes] == [["c3", "f2"], ["c2", "f1", "t1"]]


def test_lane_cores_leave_one_core_to_the_driver() -> None:
    assert plan.lane_cores(list(range(16)), 5) == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12],
                                                  [13, 14, 15]]  # fmt: skip
    assert plan.lane_cores([0, 1], 2) == [[1], [1]]  # fewer cores than lanes: shared


@pytest.mark.parametrize(
    ("loader", "model", "lanes", "epochs"),
    [(1000.0, 10_000.0, 5, 8), (1000.0, 3000.0, 5, 5), (1.0, 1.0, 1, 1)],
)
def test_epochs_are_bought_at_the_slower_of_loader_and_shared_model(
    loader: float, model: float, lanes: int, epochs: int
) -> None:
    rates = {"loader_samples_s": loader, "model_samples_s": model}
    # 80 s at 1000 (or 3000 / 5) samples/s over 8,100 + 900 images an epoch: 8.9 (5.3)
    assert plan.epochs_for(80.0, rates, lanes, 8100, 900) == epochs


def test_rate_scale_multiplies_the_guess_but_not_an_achieved_rate() -> None:
    rates = {"loader_samples_s": 900.0, "model_samples_s": 1000.0}
    # guess 200 samples/s x 2.5 = 500: 50,000 samples in 100 s over 9,000 an epoch
    assert plan.epochs_for(100.0, rates, 5, 8100, 900, scale=2.5) == 5
    rates["achieved_samples_s"] = 162.0  # 16,200 training samples in 100 s
    assert plan.epochs_for(100.0, rates, 5, 8100, 900, scale=2.5) == 2


def test_budget_args_size_the_cosine_schedule_and_leave_a_plateau_schedule_alone() -> None:
    probe = {
        "n_train": 8100,
        "n_val": 900,
        "configs": {
            c: {"startup_s": 15.0, "batch": 32, "loader_samples_s": 900.0,
                "model_samples_s": 9000.0}
            for c in ("conf/model/heatmap_budget.yaml", "conf/model/deeppose.yaml")
        },
    }  # fmt: skip
    opts = gc.parse(["--lanes", "2"])
    cosine = job("h", 1)
    cosine.model_config = "conf/model/heatmap_budget.yaml"
    args = plan.budget_args(cosine, probe, opts, fit_s=120.0)  # 100 s: 10 epochs of 253 steps
    assert "--trainer.max_time=00:00:01:40" in args and "--trainer.max_epochs=10" in args
    assert "--model.init_args.scheduler.init_args.total_steps=2530" in args
    assert "--trainer.max_steps=2530" in args
    plateau = plan.budget_args(job("d", 2), probe, opts, fit_s=120.0)
    assert "--trainer.max_steps=-1" in plateau and not any("total_steps" in a for a in plateau)
    assert "--trainer.check_val_every_n_epoch=1" in plateau  # ReduceLROnPlateau: every epoch


def test_jobs_are_the_families_and_the_sweep_trials_without_wandb(tmp_path: Path) -> None:
    jobs = plan.make_jobs(tmp_path, ["deeppose"], list(plan.SWEEPS), count=None)
    assert [j.name for j in jobs][:4] == [
        "families/deeppose", "cascade_depth/trial_001", "cascade_depth/trial_002",
        "cascade_depth/trial_003",
    ]  # fmt: skip
    assert [j.fits for j in jobs if j.sweep == "cascade_depth"] == [1, 2, 3]
    assert len([j for j in jobs if j.sweep == "tompson_pooling"]) == 8
    assert all(j.command[1] == "-m" for j in jobs)  # the interpreter, -m, the module
    text = plan.csv_only(gc.trial_config(tmp_path, "x", "p"))
    assert "Wandb" not in text and "CSVLogger" in text


def test_seeds_repeat_each_sweep_setting_with_seed_everything(tmp_path: Path) -> None:
    jobs = plan.make_jobs(tmp_path, [], ["sweeps/cascade_depth.yaml"], None, seeds=[0, 1, 2])
    assert [(j.values["depth"], j.values["seed_everything"]) for j in jobs] == [
        (d, s) for d in (1, 2, 3) for s in (0, 1, 2)
    ]
    assert [j.fits for j in jobs] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert "--seed_everything=2" in jobs[-1].command  # the agent's form, to every stage's fit


def test_smoke_writes_a_row_per_job_with_the_validation_metrics(tmp_path: Path) -> None:
    """The whole script on the CPU: 64 px, 16 images a split, one epoch a fit, two lanes; the
    four families, two trials of each sweep, every fit augmenting on the device (the CPU here);
    before them the throughput phase, both data paths and the model alone. ~50 s of CPU.
    Without ``wandb``, as on the GPU machine: there a config naming ``WandbLogger`` failed to
    parse."""
    write_lspet(tmp_path / "data" / "lspet", 60)
    out = tmp_path / "out"
    hidden = tmp_path / "no_wandb" / "wandb"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('no wandb on the GPU machine')\n")
    env = os.environ | {"OUT": str(out), "PYTHON": sys.executable, "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join([str(hidden.parent), *sys.path])
    done = subprocess.run(
        ["bash", str(REPO / "bench/gpu_convergence.sh"), "--smoke", "--data-root",
         str(tmp_path / "data"), "--work", str(tmp_path / "work")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = list(csv.DictReader((out / "gpu_convergence.csv").open()))
    assert [r["job"] for r in rows] == [
        "families/deeppose", "families/tompson", "families/multitask", "families/heatmap_budget",
        "cascade_depth/trial_001", "cascade_depth/trial_002", "tompson_pooling/trial_001",
        "tompson_pooling/trial_002",
    ]  # fmt: skip
    fits = {"cascade_depth/trial_002": 2}
    for row in rows:
        assert row["status"] == "ok" and row["GPU"] == "none (CPU)", row
        values = {name: float(row[name]) for name in gc.METRICS}
        assert all(0.0 <= v <= 1.0 for v in values.values()), row
        assert values["PDJ@0.05"] <= values["PDJ@0.1"] <= values["PDJ@0.2"], row
        # one epoch of the 16 training images (4 batches of 4) a fit
        assert int(row["samples"]) == 16 * fits.get(row["job"], 1), row
        assert float(row["epochs"]) == fits.get(row["job"], 1), row
        assert float(row["wall s"]) > 0 and float(row["max_time s"]) > 0, row
        folder = tmp_path / "work" / row["job"]
        logged = json.loads(gc.latest_results(folder).joinpath("val_metrics.json").read_text())
        assert values["PCK@0.2 limb joints"] == pytest.approx(logged["val/pdj@0.2/limb_joints"])
        assert values["PCKh@0.5"] == pytest.approx(logged["val/pckh@0.5"])
        # the job's per-image scores and curves, flat under $OUT, as its folder has them
        stem = row["job"].replace("/", "__")
        kept = (out / "per_image" / f"{stem}.csv").read_bytes()
        assert kept == gc.latest_results(folder).joinpath("per_image_val.csv").read_bytes()
        # and each earlier stage's, for the pairing of stages (coarse and refined, cascade
        # stage 1 and 2)
        sources = sorted(gc.latest_results(folder).glob("per_image_val_stage*.csv"))
        for source in sources:
            kept = out / "per_image" / f"{stem}{source.stem[len('per_image_val') :]}.csv"
            assert kept.read_bytes() == source.read_bytes()
        assert len(list((out / "per_image").glob(f"{stem}_stage*.csv"))) == len(sources)
        if row["job"] in ("families/tompson", "cascade_depth/trial_002"):  # two stages
            assert [p.name for p in sources] == ["per_image_val_stage1.csv"], row
        curves = sorted((out / "curves").glob(f"{stem}*.csv"))
        assert len(curves) == fits.get(row["job"], 1), curves
        assert "val/pdj@0.2" in curves[-1].read_text().splitlines()[0]
    # the pooling sweep's first trial is tompson.yaml as it stands: the same fit, seed and data
    same = [r for r in rows if r["job"] in ("families/tompson", "tompson_pooling/trial_001")]
    assert [r[m] for m in gc.METRICS for r in same[:1]] == [r[m] for m in gc.METRICS
                                                            for r in same[1:]]  # fmt: skip
    probe = json.loads((out / "probe.json").read_text())
    assert probe["n_train"] == 16 and probe["n_val"] == 6 and len(probe["configs"]) == 5
    for rates in probe["configs"].values():
        assert rates["loader_samples_s"] > 0 and rates["model_samples_s"] > 0
        assert (rates["input"], rates["batch"]) == (64, 4)
    # every fit on the device data path (the default), the throughput phase on both paths
    for row in rows:
        command = (tmp_path / "work" / row["job"] / "command.txt").read_text()
        assert "--data.augment_on=device" in command, row["job"]
    measured = json.loads((out / "throughput.json").read_text())
    assert [r["measured"] for r in measured] == [
        "fit loop, augment on cpu", "model alone", "fit loop, augment on device"
    ]  # fmt: skip
    for r in measured:
        assert r["samples_s"] > 0 and (r["batch"], r["input"]) == (4, 64), r
        assert r["utilisation_percent"] is None  # no GPU
        if r["measured"] != "model alone":
            assert r["of_model"] == pytest.approx(r["samples_s"] / measured[1]["samples_s"])
    assert "| fit loop, augment on device |" in (out / "throughput.md").read_text()
    table = (out / "gpu_convergence.md").read_text()
    assert "| job | status | PCK@0.2 limb joints | PDJ@0.05 |" in table
    assert "| families/deeppose | ok |" in table and "conf/model/tompson.yaml | 64 | 4 |" in table
    assert "best (maximize val/pdj@0.2)" in (out / "sweep_cascade_depth.md").read_text()
    assert (out / "sweep_tompson_pooling.md").is_file()


def test_the_deadline_stops_a_running_job_and_rows_say_why(tmp_path: Path, monkeypatch) -> None:
    """Lane 0 runs a job that outlasts the deadline (stopped: partial), so the job queued after
    it never starts; lane 1 a job that ends without a validation, then one that fails. The jobs
    are tiny modules run as ``python -m`` in the forked children. ~15 s of wall, no CPU."""
    names = ("sleeper", "never", "quiet", "broken")
    for name, code in zip(names, ("import time\ntime.sleep(60)", "", "print('quiet')",
                                  "raise SystemExit(3)"), strict=True):  # fmt: skip
        (tmp_path / f"{name}.py").write_text(code + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    jobs = [job(str(tmp_path / name), 1, None) for name in names]
    for j, name in zip(jobs, names, strict=True):
        j.command = ["python", "-m", name]
    rates = {"startup_s": 0.0, "batch": 4, "loader_samples_s": 1.0, "model_samples_s": 1.0}
    probe = {"gpu": "g", "n_train": 16, "n_val": 6, "configs": {jobs[0].model_config: rates}}
    opts = gc.parse(["--smoke", "--budget-s", "16", "--reserve-s", "2", "--data-root", "x"])
    writes = []
    stop_at = opts.deadline - opts.reserve_s
    started = gc.time.time()
    gc.run_jobs([jobs[:2], jobs[2:]], [[0], [0]], opts, probe, lambda: writes.append(1))
    ended = gc.time.time()
    # stopped at the deadline less the reserve: not before it (the sleeper outlasts it), and
    # after a grace of reserve_s / 2 = 1 s for the SIGTERM; 10 s of slack for a loaded machine
    # to kill and join the processes (the deadline itself is not a bound the test can hold
    # the machine to)
    assert stop_at <= ended <= stop_at + opts.reserve_s / 2 + 10
    assert [j.row["status"] for j in jobs] == [
        "partial: stopped at the deadline", "not run: deadline", "failed: no validation",
        f"failed: exit 3 (see {jobs[3].folder / 'log.txt'})",
    ]  # fmt: skip
    # the sleeper started when run_jobs did (a fork, no waiting) and ran until the stop
    assert jobs[0].row["wall s"] >= round(stop_at - started) - 1 and len(writes) == 3
    assert (jobs[2].folder / "log.txt").read_text() == "quiet\n"
    assert not jobs[1].folder.exists()


def test_a_sweep_trial_the_deadline_left_out_keeps_its_row(tmp_path: Path) -> None:
    """The H200 run's smaller try: trials not run ended the script at the sweep tables."""
    folder = tmp_path / "cascade_depth" / "trial_001"
    trial = plan.Job("cascade_depth/trial_001", "cascade_depth", "conf/model/x.yaml", [], folder)
    trial.values, trial.row = {"depth": 1}, {"status": "not run: too little time left"}
    gc.write_sweeps([trial], tmp_path / "out", ["sweeps/cascade_depth.yaml"])
    table = (tmp_path / "out" / "sweep_cascade_depth.md").read_text()
    assert "not run: too little time left" in table


def test_a_finished_fit_sizes_the_next_fits_of_its_config_at_the_rate_it_achieved() -> None:
    rates = {"loader_samples_s": 900.0, "model_samples_s": 1000.0, "startup_s": 15.0}
    assert plan.epochs_for(100.0, rates, 5, 8100, 900) == 2  # guess: 200 samples/s
    # a fit of 16,200 samples in 60 s of wall: 40 s after start-up and tail, 405 samples/s
    assert plan.record_achieved(rates, 16200, 60.0, 1) == pytest.approx(405.0)
    assert plan.epochs_for(100.0, rates, 5, 8100, 900) == 5  # 40,500 samples / 8,100
    # two fits (a depth-2 cascade) pay start-up and tail twice; the mean of the jobs is kept
    assert plan.record_achieved(rates, 16200, 80.0, 2) == pytest.approx(405.0)
    assert plan.record_achieved(rates, 100, 19.0, 1) is None  # too short to measure
    assert rates["achieved_samples_s"] == pytest.approx(405.0)


@pytest.mark.parametrize(("rule", "lr"), [("sqrt", "0.004"), ("linear", "0.008"), ("none", None)])
def test_a_larger_batch_scales_the_configs_learning_rate(rule: str, lr: str | None) -> None:
    args = plan.batch_args("conf/model/heatmap_budget.yaml", 128, rule)  # AdamW 0.002 at 32
    assert args[0] == "--data.batch_size=128"
    assert args[1:] == ([f"--model.init_args.optimizer.init_args.lr={lr}"] if lr else [])
    assert plan.batch_args("conf/model/deeppose.yaml", None) == []
    # deeppose.yaml keeps conf/lspet.yaml's batch (32) and its own rate (0.001)
    assert plan.batch_args("conf/model/deeppose.yaml", 32) == [
        "--data.batch_size=32", "--model.init_args.optimizer.init_args.lr=0.001"
    ]  # fmt: skip
