"""The W&B sweep files in sweeps/: valid sweep configurations, and the command line a W&B agent
runs (W&B's own argument formatting) is one that LightningCLI parses into the swept values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from lightning_pose.cli import main
from lightning_pose.cli.fit_cascade import parse
from lightning_pose.cli.sweep_config import (
    agent_command,
    check_sweep,
    distribution,
    load_sweep,
    trials,
)
from lightning_pose.metrics.protocol import EvaluationProtocol

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
EVALUATION = yaml.safe_load((REPO / "conf" / "shared" / "evaluation.yaml").read_text())
# the file gives only what differs from the protocol's defaults
PDJ_THRESHOLDS = EVALUATION.get("pdj_thresholds", EvaluationProtocol().pdj_thresholds)


def test_there_are_the_sweeps_of_the_design() -> None:
    assert {p.stem for p in SWEEPS} == {
        "cascade_depth",
        "pooling",
        "pooling_budget",
        "deeppose_pooling",
        "multitask",
        "multitask_budget",
    }


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_is_a_valid_sweep_the_runner_can_run(path: Path) -> None:
    config = load_sweep(path)  # W&B's schema: keys, forms, enums
    assert config["method"] == "grid" and config["metric"]["goal"] == "maximize"
    # the metric is one every model logs (base class, final stage, LSPet's thresholds)
    assert config["metric"]["name"] in {f"val/pdj@{t}" for t in PDJ_THRESHOLDS}
    for name, spec in config["parameters"].items():
        assert None not in spec["values"], f"{name}: a null arrives as the string 'None'"
    assert len(trials(config)) == math.prod(len(s["values"]) for s in config["parameters"].values())


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"program": "x.py"}, "method"),
        ({"method": "grid", "parameters": {"a": {"values": [1]}}, "metrics_x": 1}, "metrics_x"),
        ({"method": "annealing", "parameters": {"a": {"values": [1]}}}, "method"),
        ({"method": "grid", "parameters": {}}, "parameters"),
        ({"method": "grid", "parameters": {"a": {"values": []}}}, "a.values"),
        ({"method": "grid", "parameters": {"a": {"valeus": [1]}}}, "a"),
        ({"method": "grid", "parameters": {"1a": {"value": 1}}}, "1a"),
        (
            {"method": "grid", "parameters": {"a": {"value": 1}}, "metric": {"goal": "max"}},
            "metric",
        ),
        ({"method": "grid", "parameters": {"a": {"value": 1}}, "command": "python x"}, "command"),
        ({"method": "random", "parameters": {"a": {"distribution": "cauchy"}}}, "distribution"),
        ({"method": "random", "parameters": {"a": {"distribution": "uniform", "min": 0}}}, "a"),
    ],
)
def test_check_sweep_rejects_what_the_schema_rejects(bad: dict, key: str) -> None:
    with pytest.raises(ValueError, match=rf"bad\.yaml.*{key}"):
        check_sweep(bad, "bad.yaml")


DOCUMENTED_FORMS = {
    "name": "all forms",
    "method": "random",
    "run_cap": 200,
    "metric": {"name": "val/loss", "goal": "minimize", "target": 0.01},
    "early_terminate": {"type": "hyperband", "min_iter": 3},
    "parameters": {
        "a": {"value": 1},
        "b": {"values": [1, 2], "probabilities": [0.25, 0.75]},
        "c": {"min": 1, "max": 4},
        "d": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "e": {"distribution": "normal", "mu": 3.0, "sigma": 0.5},
        "f": {"min": 0.5, "max": 1.5},
    },
}


def test_check_sweep_accepts_the_documented_forms_and_reads_each_as_wandb_does() -> None:
    """Every form W&B documents passes the check, each parameter is read as the distribution
    W&B infers for it (a bare min/max of ints is int_uniform, of floats uniform), and 200
    seeded random trials draw from it: the constant, both categories at about their
    probabilities, every integer 1-4, values inside the log-uniform range, normal draws with
    mean 3 and deviation 0.5 (within 4 standard errors)."""
    check_sweep(DOCUMENTED_FORMS, "ok.yaml")
    nested = {"parameters": {"f": {"parameters": {"g": {"values": ["x", "y"]}}}}}
    check_sweep({**DOCUMENTED_FORMS, **nested}, "ok.yaml")
    parameters = DOCUMENTED_FORMS["parameters"]
    assert {name: distribution(spec) for name, spec in parameters.items()} == {
        "a": "constant",
        "b": "categorical_w_probabilities",
        "c": "int_uniform",
        "d": "log_uniform_values",
        "e": "normal",
        "f": "uniform",
    }
    drawn = trials(DOCUMENTED_FORMS, seed=0)
    assert len(drawn) == 200 and trials(DOCUMENTED_FORMS, seed=0) == drawn  # seeded
    column = {name: np.array([t[name] for t in drawn]) for name in parameters}
    assert set(column["a"]) == {1} and set(column["c"]) == {1, 2, 3, 4}
    assert abs((column["b"] == 2).mean() - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 200)
    assert column["d"].min() >= 1e-4 and column["d"].max() <= 1e-1
    assert column["d"].min() < 1e-3 and column["d"].max() > 1e-2  # spread over the decades
    assert abs(column["e"].mean() - 3.0) < 4 * 0.5 / math.sqrt(200)
    assert abs(column["e"].std() - 0.5) < 0.1
    assert column["f"].min() >= 0.5 and column["f"].max() <= 1.5


def test_agent_command_of_a_trial_is_the_exact_command_line() -> None:
    config = load_sweep(REPO / "sweeps" / "pooling.yaml")
    values = trials(config)[-1]
    assert agent_command(config, values) == [
        "/usr/bin/env",
        "python",
        "-m",
        "lightning_pose",
        "fit",
        "-c",
        "conf/lspet.yaml",
        "-c",
        "conf/model/tompson.yaml",
        "--trainer.max_time=00:02:00:00",
        "--model.init_args.trunk.init_args.pooling=avg",
        "--model.init_args.trunk.init_args.num_poolings=3",
        "--model.init_args.training_phase=coarse",
    ]


def agent_cases() -> list[tuple[Path, int]]:
    """The first and the last trial of every sweep (together every value of most parameters)."""
    return [(p, i) for p in SWEEPS for i in (0, -1)]


@pytest.mark.parametrize(("path", "pick"), agent_cases(), ids=lambda x: str(getattr(x, "stem", x)))
def test_agent_command_parses_into_the_swept_values(
    path: Path, pick: int, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the agent runs from the repository root: conf/... are relative
    config = load_sweep(path)
    values = trials(config)[pick]
    command = agent_command(config, values)
    assert command[:2] == ["/usr/bin/env", "python"] and command[2] == "-m"
    # overrides come after the config files (placed before them a file would overwrite them)
    last_config = max(i for i, c in enumerate(command) if c == "-c")
    assert all(i > last_config + 1 for i, c in enumerate(command) if c.startswith("--model"))
    module, args = command[3], command[4:]
    assert module == "lightning_pose" and args[0] in ("fit", "fit-cascade")
    if args[0] == "fit-cascade":
        ns, rest = parse(args[1:])
        assert ns.depth == values["depth"]
        args = ["fit", *rest, f"--model.init_args.num_stages={ns.depth}"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in values.items():
        if key == "depth":
            key = "model.init_args.num_stages"
        node = printed
        for part in key.split("."):
            node = node[part]
        assert node == (None if value == "null" else value), key
