"""resolve_resume: which checkpoint and run folder ``fit --ckpt_path ...`` continues."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from jsonargparse import Namespace

from lightning_pose.runtime.resume import (
    SLURM_JOB_ENV,
    WANDB_RUN_ENV,
    WANDB_RUN_ID_FILE,
    resolve_resume,
)

REPO = Path(__file__).resolve().parents[2]


def fit_config(tmp_path: Path, ckpt_path: str | None, version=None) -> Namespace:
    csv = Namespace(
        class_path="lightning_pose.runtime.resume.CSVLogger",
        init_args=Namespace(save_dir=str(tmp_path / "runs"), name="lspet", version=version),
    )
    wandb = Namespace(
        class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(version=None)
    )
    trainer = Namespace(logger=[csv, wandb], default_root_dir=str(tmp_path / "root"))
    return Namespace(ckpt_path=ckpt_path, trainer=trainer)


def touch(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLURM_JOB_ENV, raising=False)
    monkeypatch.delenv(WANDB_RUN_ENV, raising=False)


def test_last_is_the_newest_run_with_a_last_ckpt_and_its_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs" / "lspet"
    touch(runs / "version_2" / "checkpoints" / "last.ckpt", 100)
    touch(runs / "version_10" / "checkpoints" / "last.ckpt", 50)  # newest by version number
    (runs / "version_11").mkdir()  # a later run that wrote no checkpoint
    config = fit_config(tmp_path, "last")
    resolve_resume(config)
    assert config.ckpt_path == str(runs / "version_10" / "checkpoints" / "last.ckpt")
    assert config.trainer.logger[0].init_args.version == 10
    assert config.trainer.logger[1].init_args.version is None  # W&B: a new run, not "10"


def test_a_path_inside_a_run_folder_resumes_in_it(tmp_path: Path) -> None:
    ckpt = touch(tmp_path / "runs" / "lspet" / "version_3" / "checkpoints" / "best-001.ckpt", 1)
    config = fit_config(tmp_path, str(ckpt))
    resolve_resume(config)
    assert config.ckpt_path == str(ckpt) and config.trainer.logger[0].init_args.version == 3
    elsewhere = fit_config(tmp_path, str(touch(tmp_path / "other.ckpt", 1)))
    resolve_resume(elsewhere)
    assert elsewhere.trainer.logger[0].init_args.version is None  # a new run folder
    with pytest.raises(FileNotFoundError, match="--ckpt_path: .*missing.ckpt does not exist"):
        resolve_resume(fit_config(tmp_path, str(tmp_path / "missing.ckpt")))


def test_last_without_any_run_starts_a_new_one_with_a_warning(tmp_path: Path) -> None:
    config = fit_config(tmp_path, "last")
    with pytest.warns(UserWarning, match="no run with checkpoints/last.ckpt under .*lspet"):
        resolve_resume(config)
    assert config.ckpt_path is None


def test_under_slurm_the_job_has_its_own_run_and_the_newer_checkpoint_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SLURM_JOB_ENV, "4242")
    runs = tmp_path / "runs" / "lspet"
    touch(runs / "version_9" / "checkpoints" / "last.ckpt", 500)  # another job's run
    fresh = fit_config(tmp_path, None)
    resolve_resume(fresh)
    assert fresh.trainer.logger[0].init_args.version == "slurm_4242" and fresh.ckpt_path is None

    last = touch(runs / "slurm_4242" / "checkpoints" / "last.ckpt", 100)
    hpc = touch(tmp_path / "root" / "hpc_ckpt_1.ckpt", 200)  # saved on SIGUSR1, later
    config = fit_config(tmp_path, "last")
    resolve_resume(config)
    assert config.ckpt_path == str(hpc)
    assert config.trainer.logger[0].init_args.version == "slurm_4242"
    os.utime(last, (300, 300))
    config = fit_config(tmp_path, "last")
    resolve_resume(config)
    assert config.ckpt_path == str(last)


@pytest.mark.parametrize("script", sorted((REPO / "slurm").glob("*.sbatch")), ids=lambda p: p.name)
def test_slurm_scripts_parse(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


# --- one folder per run -------------------------------------------------------------------
def _open_run(save_dir: str, start: multiprocessing.synchronize.Barrier, out) -> None:
    from lightning_pose.runtime.resume import CSVLogger

    start.wait()  # all processes ask for a folder at the same moment
    out.put(CSVLogger(save_dir=save_dir, name="lspet").log_dir)


def test_runs_started_together_get_their_own_folders(tmp_path: Path) -> None:
    """Before: every process listed the folders, saw none and took ``version_0``."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(4), ctx.Queue()
    processes = [
        ctx.Process(target=_open_run, args=(str(tmp_path / "runs"), start, out)) for _ in range(4)
    ]
    for p in processes:
        p.start()
    folders = sorted(out.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=60)
    assert [Path(f).name for f in folders] == [f"version_{n}" for n in range(4)]
    assert all(Path(f).is_dir() for f in folders)  # created (reserved) when chosen


def test_under_slurm_a_new_run_never_takes_a_folder_in_use_and_a_requeue_finds_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SLURM_JOB_ENV, "77")
    monkeypatch.delenv(WANDB_RUN_ENV, raising=False)
    versions = []
    for _ in range(2):  # two fits in one job, e.g. a script that runs two in turn
        config = fit_config(tmp_path, None)
        resolve_resume(config)
        versions.append(config.trainer.logger[0].init_args.version)
    assert versions == ["slurm_77", "slurm_77_2"]
    # the requeued job (fit.sbatch passes --ckpt_path last) resumes its own folder
    last = touch(tmp_path / "runs" / "lspet" / "slurm_77" / "checkpoints" / "last.ckpt", 1)
    config = fit_config(tmp_path, "last")
    resolve_resume(config)
    assert config.ckpt_path == str(last)
    assert config.trainer.logger[0].init_args.version == "slurm_77"


def test_sweep_agent_trials_in_one_slurm_job_get_their_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SLURM_JOB_ENV, "78")
    versions = []
    for trial in ("abc123", "def456"):  # `wandb agent` sets WANDB_RUN_ID for each trial
        monkeypatch.setenv(WANDB_RUN_ENV, trial)
        config = fit_config(tmp_path, None)
        resolve_resume(config)
        versions.append(config.trainer.logger[0].init_args.version)
    assert versions == ["slurm_78_abc123", "slurm_78_def456"]


def test_a_resumed_fit_continues_the_w_and_b_run_of_its_folder(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "lspet" / "version_4"
    touch(run / "checkpoints" / "last.ckpt", 1)
    (run / WANDB_RUN_ID_FILE).write_text("r4nd0m1d\n")
    config = fit_config(tmp_path, "last")
    resolve_resume(config)
    assert config.trainer.logger[1].init_args.version == "r4nd0m1d"
    fresh = fit_config(tmp_path, None)
    resolve_resume(fresh)
    assert fresh.trainer.logger[1].init_args.version is None


# --- one process per run folder; evaluations beside their checkpoint -----------------------
def tiny_fit(root: Path, steps: int) -> list[str]:
    from tests.callbacks.test_checkpoint import every_step_args

    return [*every_step_args(REPO / "conf" / "lspet.yaml", root), f"--trainer.max_steps={steps}"]


def module_env() -> dict[str, str]:
    import torch

    threads = str(torch.get_num_threads())
    return os.environ | {
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": threads,
        "PYTHONPATH": str(REPO),
    }


def probe(class_path: str, **init_args) -> str:
    return "--trainer.callbacks+=" + json.dumps({"class_path": class_path, "init_args": init_args})


def test_a_second_resume_while_the_first_runs_refuses_and_a_killed_runs_lock_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_pose.cli import main
    from lightning_pose.runtime.resume import RunFolderInUse
    from tests.conftest import write_lspet

    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    monkeypatch.chdir(tmp_path)
    main(tiny_fit(root, 2))
    run = tmp_path / "runs" / "lspet" / "version_0"
    sleeper = probe("tests.fault_probes.SleepAtStep", step=2, seconds=300)
    first = subprocess.Popen(
        [sys.executable, "-m", "lightning_pose", *tiny_fit(root, 4), "--ckpt_path=last", sleeper],
        cwd=tmp_path,
        env=module_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        lock = run / "run.lock"
        while not (lock.is_file() and f"process {first.pid} " in lock.read_text()):
            if first.poll() is not None:
                pytest.fail(f"the first resume ended:\n{first.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "the first resume took no lock within 240 s"
            time.sleep(0.1)
        with pytest.raises(RunFolderInUse, match=rf"{run} is in use by process {first.pid} on "):
            main([*tiny_fit(root, 4), "--ckpt_path=last"])
    finally:
        first.kill()
        first.wait(timeout=60)
    # killed (SIGKILL): its lock went with it; a save it was killed in left a temporary file
    stale = run / "checkpoints" / ".last.ckpt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    cli = main([*tiny_fit(root, 4), "--ckpt_path=last"])
    assert cli.trainer.global_step == 4
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    assert not stale.exists()


def test_validate_writes_beside_its_checkpoint_and_a_sigterm_says_what_is_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_pose.cli import main
    from tests.conftest import write_lspet

    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    monkeypatch.chdir(tmp_path)
    main(tiny_fit(root, 2))
    run = tmp_path / "runs" / "lspet" / "version_0"
    validate = ["validate", *tiny_fit(root, 2)[1:], f"--ckpt_path={run}/checkpoints/last.ckpt"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(validate)
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # no version_1
    assert (run / "validate_last" / "val_metrics.md").is_file()

    # SIGTERM during a standalone validate (3 batches of 1): nothing about last.ckpt or fit
    stop = probe("tests.fault_probes.SignalAtValidationBatch", batch=0)
    done = subprocess.run(
        [sys.executable, "-m", "lightning_pose", *validate, "--data.batch_size=1", stop],
        cwd=tmp_path,
        env=module_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 143, done.stderr[-3000:]
    assert (
        f"stopped by SIGTERM during validate of {run}/checkpoints/last.ckpt: its validate "
        "results were not written"
    ) in done.stderr
    assert "--ckpt_path last" not in done.stderr and "holds step" not in done.stderr
