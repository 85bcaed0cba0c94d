"""The offline sweep runner: trials of grid and random search, the trial command, and a
two-trial grid run end to end (one trial fails on purpose) with its results table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lightning_pose.__main__ import run
from lightning_pose.cli.sweep import read_results, result_keys, trial_command, write_results
from lightning_pose.cli.sweep_config import SweepError, trials
from lightning_pose.metrics.protocol import EvaluationProtocol
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


MEAN_ERROR = ("lightning_pose.metrics.MeanJointError",)


def test_result_keys_from_the_declarations() -> None:
    """Every declared metric's pooled keys, then each stage's keys of the sweep metric's
    metric: PDJ for ``val/pdj@0.2`` (the table as before), the mean error for its key."""
    declared = EvaluationProtocol(pdj_thresholds=(0.1, 0.2), extra_metrics=MEAN_ERROR)
    declarations = declared.declarations()
    pooled = ["val/pdj@0.1", "val/pdj@0.2", "val/pckh@0.5", "val/pcp@0.5"]
    pooled += ["val/pck_bbox@0.05", "val/pck_bbox@0.1", "val/pck_bbox@0.2"]
    pooled += ["val/oks_ap", "val/oks_ap50", "val/oks_ap75", "val/oks_ar", "val/mean_error_px"]
    assert result_keys(declarations, 1, "val/pdj@0.2") == pooled
    assert result_keys(declarations, 2, "val/pdj@0.2") == pooled + [
        "val/stage1/pdj@0.1",
        "val/stage1/pdj@0.2",
        "val/stage2/pdj@0.1",
        "val/stage2/pdj@0.2",
    ]
    assert result_keys(declarations, 2, "val/mean_error_px")[-2:] == [
        "val/stage1/mean_error_px",
        "val/stage2/mean_error_px",
    ]
    assert result_keys([], 2, "val/pdj@0.2") == []  # a trial without declarations


def test_results_table_units_and_a_goal_against_the_declared_direction(tmp_path: Path) -> None:
    results = tmp_path / "trial_001" / "version_0"
    results.mkdir(parents=True)
    declarations = EvaluationProtocol(extra_metrics=MEAN_ERROR).declarations()
    record = {"stages": 1, "declarations": [d.to_dict() for d in declarations]}
    (results / "metric_declarations.json").write_text(json.dumps(record))
    config = {"metric": {"name": "val/mean_error_px", "goal": "maximize"}, "parameters": {}}
    row = {"trial": "trial_001", "status": "ok", "seconds": 1.0, "results": str(results)}
    row |= {"val/mean_error_px": 12.25, "val/pdj@0.2": 0.5}
    write_results(tmp_path, [row], [], config)
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| trial | status | val/mean_error_px | val/pdj@0.2 | seconds | results |"
    assert lines[2] == f"| trial_001 | ok | 12.2 | 50.0 | 1.0 | {results} |"
    assert lines[-1] == (
        "warning: the sweep's metric.goal is maximize, but mean joint error "
        "(val/mean_error_px) declares lower is better."
    )


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


def test_results_state_each_trials_interval_and_its_difference_to_the_first(
    tmp_path: Path,
) -> None:
    """With every trial's per_image_val.csv, results.md gives the sweep metric's bootstrap
    interval per trial and the paired difference to trial 1; without one it says why."""
    from lightning_pose.metrics.intervals import paired_difference_interval, ratio_interval
    from tests.metrics.test_intervals import write_scores

    rng = np.random.default_rng(0)
    counts = np.full(300, 14)
    hits = [rng.binomial(14, 0.3, size=300)]
    hits.append(np.minimum(hits[0] + 2 * (rng.random(300) < 0.5), 14))  # trial 2 better
    config = {"metric": {"name": "val/pdj@0.2", "goal": "maximize"}, "parameters": {}}
    rows = []
    for t, h in enumerate(hits, 1):
        results = tmp_path / f"trial_00{t}"
        results.mkdir()
        write_scores(results / "per_image_val.csv", np.arange(300), h / 14, counts)
        rows.append({"trial": f"trial_00{t}", "status": "ok", "seconds": 1.0,
                     "results": str(results), "val/pdj@0.2": h.sum() / counts.sum()})  # fmt: skip
    write_results(tmp_path, rows, [], config)
    text = (tmp_path / "results.md").read_text()
    assert f"| trial_001 | {ratio_interval(hits[0], counts).percent()} |" in text
    difference = paired_difference_interval(hits[1], counts, hits[0], counts)
    assert f"| trial_002 | {difference.percent_difference()} **effect** |" in text
    assert text.rstrip().endswith("best (maximize val/pdj@0.2): trial_002")

    (tmp_path / "trial_002" / "per_image_val.csv").unlink()
    write_results(tmp_path, rows, [], config)
    text = (tmp_path / "results.md").read_text()
    assert "No intervals: no per_image_val.csv for trial_002" in text


def test_a_seeded_sweep_pools_each_settings_seeds(tmp_path: Path) -> None:
    """A ``seed_everything`` parameter: results.md gives each setting's seeds and their range,
    then the setting's pooled interval and its paired difference to the first setting."""
    from lightning_pose.callbacks.metrics_table import format_value
    from lightning_pose.metrics.intervals import paired_difference_interval, ratio_interval
    from tests.metrics.test_intervals import write_scores

    rng = np.random.default_rng(1)
    counts = np.full(200, 14)
    config = {"metric": {"name": "val/pdj@0.2", "goal": "maximize"}}
    parameters = ["model.init_args.pooling", "seed_everything"]
    hits: dict[str, list[np.ndarray]] = {"max": [], "avg": []}
    rows = []
    for t, (pooling, seed) in enumerate([(p, s) for p in ("max", "avg") for s in (0, 1, 2)], 1):
        p = 0.3 if pooling == "max" else 0.4
        h = rng.binomial(14, p, size=200)
        hits[pooling].append(h)
        results = tmp_path / f"trial_{t:03d}"
        results.mkdir()
        write_scores(results / "per_image_val.csv", np.arange(200), h / 14, counts)
        rows.append({"trial": results.name, "status": "ok", "seconds": 1.0,
                     "results": str(results), "model.init_args.pooling": pooling,
                     "seed_everything": seed, "val/pdj@0.2": h.sum() / counts.sum()})  # fmt: skip
    write_results(tmp_path, rows, parameters, config)
    text = (tmp_path / "results.md").read_text()
    each = ", ".join(format_value(h.sum() / counts.sum()) for h in hits["max"])
    assert f"| pooling=max | 3 | {each} |" in text
    pooled = {k: np.sum(v, axis=0) for k, v in hits.items()}
    assert f"| pooling=max | {ratio_interval(pooled['max'], 3 * counts).percent()} |" in text
    gain = paired_difference_interval(pooled["avg"], 3 * counts, pooled["max"], 3 * counts)
    assert gain.low > 0
    assert f"| pooling=avg | {gain.percent_difference()} **effect** |" in text
