"""The offline sweep runner: trials of grid and random search, the trial command, and a
two-trial grid run end to end (one trial fails on purpose) with its results table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from lightning_pose.__main__ import run
from lightning_pose.cli.sweep import trial_command
from lightning_pose.cli.sweep_config import SweepError, trials
from lightning_pose.reports.tables import read_results
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]


def test_grid_trials_vary_the_last_parameter_fastest() -> None:
    config = {
        "method": "grid",
        "parameters": {"a": {"values": [1, 2]}, "b": {"values": ["x", "y"]}, "c": {"value": 0}},
    }
    assert trials(config) == [
        {"a": 1, "b": "x", "c": 0},
        {"a": 1, "b": "y", "c": 0},
        {"a": 2, "b": "x", "c": 0},
        {"a": 2, "b": "y", "c": 0},
    ]
    assert trials(config, count=3) == trials(config)[:3]


def test_random_trials_are_seeded_and_inside_their_ranges() -> None:
    config = {
        "method": "random",
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
            "depth": {"min": 1, "max": 3},
            "pooling": {"values": ["max", "avg"]},
        },
    }
    drawn = trials(config, count=20, seed=1)
    assert drawn == trials(config, count=20, seed=1) != trials(config, count=20, seed=2)
    assert all(1e-4 <= t["lr"] <= 1e-2 and t["depth"] in (1, 2, 3) for t in drawn)
    assert {t["pooling"] for t in drawn} == {"max", "avg"}
    with pytest.raises(SweepError, match="--count"):
        trials(config)


def test_bayes_needs_a_wandb_server() -> None:
    config = {"method": "bayes", "parameters": {"a": {"min": 0.0, "max": 1.0}}}
    with pytest.raises(SweepError, match="needs a W&B server.*wandb agent"):
        trials(config)
    with pytest.raises(SweepError, match="grid search takes value or values"):
        trials(config | {"method": "grid"})


def test_trial_command_puts_the_trial_config_before_the_parameters(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "sweeps" / "cascade_depth.yaml").read_text())
    command = trial_command(config, {"depth": 2}, tmp_path / "trial.yaml", ["--x=1"])
    assert command[-4:] == ["-c", str(tmp_path / "trial.yaml"), "--depth=2", "--x=1"]
    assert command[1].endswith("python") and command[1] != "python"  # this interpreter
    with pytest.raises(SweepError, match="null"):
        trial_command(config, {"depth": None}, tmp_path / "trial.yaml", [])


def test_other_methods_exit_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = tmp_path / "bayes.yaml"
    sweep.write_text(yaml.safe_dump({"method": "bayes", "parameters": {"a": {"values": [1]}}}))
    assert run(["sweep", str(sweep), "--output", str(tmp_path / "out")]) == 2
    assert "needs a W&B server" in capsys.readouterr().err


def test_two_trial_grid_with_a_failure(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropout of 2.0 is invalid: trial 2 fails at construction, is recorded, and the table
    still holds trial 1's metrics."""
    monkeypatch.chdir(REPO)
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "method": "grid",
                "metric": {"name": "val/pdj@0.2", "goal": "maximize"},
                "parameters": {"model.init_args.head.init_args.dropout": {"values": [0.2, 2.0]}},
                "command": [
                    "${env}",
                    "python",
                    "-m",
                    "lightning_pose",
                    "fit",
                    "-c",
                    "conf/lspet.yaml",
                    "${args}",
                ],  # fmt: skip
            }
        )
    )
    out = tmp_path / "out"
    extra = [
        *tiny_args(tiny_root),
        "--trainer.fast_dev_run=2",
    ]
    assert run(["sweep", str(sweep), "--output", str(out), "--", *extra]) == 1  # one failed
    config, rows = read_results(out)
    assert config["name"] == "tiny"
    assert [r["trial"] for r in rows] == ["trial_001", "trial_002"]
    assert [r["model.init_args.head.init_args.dropout"] for r in rows] == [0.2, 2.0]
    ok, failed = rows
    assert ok["status"] == "ok" and failed["status"].startswith("failed: exit")
    for key in ("val/pdj@0.2", "val/pdj@0.05", "val/pckh@0.5", "val/pcp@0.5"):
        assert 0.0 <= ok[key] <= 1.0
        assert key not in failed
    with open(out / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:4] == [
        "trial",
        "status",
        "model.init_args.head.init_args.dropout",
        "val/pdj@0.2",
    ]
    assert (out / "trial_001" / "val_metrics.json").is_file()  # its own folder (fast_dev_run)
    assert "ValueError" in (out / "trial_002" / "log.txt").read_text()
    markdown = (out / "results.md").read_text()
    assert (
        "| trial_002 | failed: exit" in markdown
        and "best (maximize val/pdj@0.2): trial_001" in markdown
    )
    assert (out / "results.png").stat().st_size > 0
    command = (out / "trial_001" / "command.txt").read_text()
    assert command.rstrip().endswith(
        f"-c {out / 'trial_001' / 'trial.yaml'} --model.init_args.head.init_args.dropout=0.2 "
        + " ".join(extra)
    )


@pytest.mark.parametrize("text", ["method: grid\nparameters: [unclosed\n", "just a string\n"])
def test_a_sweep_file_that_is_not_a_yaml_mapping_is_named(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert run(["sweep", str(path)]) == 2  # before: a raw yaml traceback
    err = capsys.readouterr().err
    assert f"error: {path}:" in err and (
        "not valid YAML" in err or "expected a YAML mapping" in err
    )
