"""W&B sweep files: the check against W&B's sweep configuration schema, the trials that grid
and random search run, and the command line ``wandb agent`` runs for a trial.

Used by the offline runner (:mod:`lightning_pose.cli.sweep`) and by the tests of ``sweeps/``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import random
import re
from pathlib import Path
from typing import Any

import yaml

# W&B's sweep configuration (github.com/wandb/sweeps, config/schema.json): top-level keys,
# methods, metric goals, and the keys of each parameter form, by distribution.
TOP_LEVEL = {
    "apiVersion", "kind", "controller", "description", "program", "job", "image_uri", "entity",
    "project", "method", "command", "name", "run_cap", "metric", "metrics", "scheduler",
    "early_terminate", "parameters",
}  # fmt: skip
METHODS = ("grid", "random", "bayes", "custom")
LOCAL_METHODS = ("grid", "random")
METRIC_KEYS = {"name", "goal", "target", "impute", "impute_while_running"}
DISTRIBUTIONS = {
    "constant": {"value"},
    "categorical": {"values"},
    "categorical_w_probabilities": {"values", "probabilities"},
    "int_uniform": {"min", "max"},
    "uniform": {"min", "max"},
    "q_uniform": {"min", "max", "q"},
    "log_uniform": {"min", "max"},
    "log_uniform_values": {"min", "max"},
    "q_log_uniform": {"min", "max", "q"},
    "q_log_uniform_values": {"min", "max", "q"},
    "inv_log_uniform": {"min", "max"},
    "inv_log_uniform_values": {"min", "max"},
    "normal": {"mu", "sigma"},
    "q_normal": {"mu", "sigma", "q"},
    "log_normal": {"mu", "sigma"},
    "q_log_normal": {"mu", "sigma", "q"},
    "beta": {"a", "b"},
    "q_beta": {"a", "b", "q"},
}
REQUIRED = {"constant": {"value"}, "categorical": {"values"}}
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
COMMAND_MACROS = ("env", "interpreter", "program", "args", "args_no_hyphens", "args_json",
                  "args_no_boolean_flags", "args_no_equals")  # fmt: skip


class SweepError(ValueError):
    """A sweep file the runner cannot run; the message names the file and the key."""


def distribution(spec: dict) -> str:
    """A parameter's distribution, as W&B infers it when the file leaves it out."""
    if "distribution" in spec:
        return spec["distribution"]
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
        return "int_uniform"
    return "uniform"


def check_parameters(parameters: Any, where: str) -> None:
    if not isinstance(parameters, dict) or not parameters:
        raise SweepError(f"{where}: expected a non-empty mapping of parameters")
    for name, spec in parameters.items():
        key = f"{where}.{name}"
        if not PARAMETER_NAME.match(str(name)):
            raise SweepError(f"{key}: a parameter name matches [A-Za-z_][A-Za-z0-9_.-]*")
        if not isinstance(spec, dict):
            raise SweepError(f"{key}: expected a mapping (value, values, distribution, ...)")
        if "parameters" in spec:
            if set(spec) != {"parameters"}:
                raise SweepError(f"{key}: nested parameters take no other key")
            check_parameters(spec["parameters"], f"{key}.parameters")
            continue
        kind = distribution(spec)
        if kind not in DISTRIBUTIONS:
            raise SweepError(f"{key}.distribution: {kind!r} is not one of {list(DISTRIBUTIONS)}")
        extra = set(spec) - DISTRIBUTIONS[kind] - {"distribution"}
        missing = REQUIRED.get(kind, set()) - set(spec)
        if kind.endswith("uniform") and not kind.startswith("int"):
            missing |= {"min", "max"} - set(spec)
        if extra or missing:
            raise SweepError(f"{key}: unknown keys {sorted(extra)} or missing {sorted(missing)}")
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
            raise SweepError(f"{key}.values: expected a non-empty list")


def check_sweep(config: Any, source: str) -> None:
    """Check ``config`` against W&B's sweep configuration schema (its documented keys, forms
    and enums).

    Raises:
        SweepError: naming ``source`` and the offending key.
    """
    if not isinstance(config, dict):
        raise SweepError(f"{source}: a sweep file is a YAML mapping")
    unknown = sorted(set(config) - TOP_LEVEL)
    if unknown:
        raise SweepError(
            f"{source}: unknown top-level keys {unknown}; W&B knows {sorted(TOP_LEVEL)}"
        )
    if config.get("method") not in METHODS:
        raise SweepError(f"{source}: method must be one of {METHODS}, got {config.get('method')!r}")
    metric = config.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or "name" not in metric or set(metric) - METRIC_KEYS:
            raise SweepError(f"{source}: metric is a mapping with name (and goal, target)")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SweepError(f"{source}: metric.goal must be minimize or maximize")
    command = config.get("command")
    if command is not None and not isinstance(command, list):
        raise SweepError(f"{source}: command must be a list")
    run_cap = config.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        raise SweepError(f"{source}: run_cap must be a positive integer")
    check_parameters(config.get("parameters"), f"{source}: parameters")


def load_sweep(path: Path) -> dict:
    """Read and check a sweep file (:func:`check_sweep`).

    Raises:
        SweepError: the file is missing, not YAML, not a mapping, or not a valid sweep.
    """
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:  # the parser's message names the line and column
        raise SweepError(f"{path}: not valid YAML ({err}); expected a W&B sweep file") from None
    if not isinstance(config, dict):
        raise SweepError(f"{path}: expected a YAML mapping (a W&B sweep file), got {config!r}")
    check_sweep(config, str(path))
    return config


def grid_trials(parameters: dict) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, the last parameter varying fastest (W&B's
    grid order)."""
    axes = []
    for name, spec in parameters.items():
        kind = distribution(spec)
        if kind == "constant":
            axes.append([(name, spec["value"])])
        elif kind in ("categorical", "categorical_w_probabilities"):
            axes.append([(name, v) for v in spec["values"]])
        else:
            raise SweepError(f"parameters.{name}: grid search takes value or values, not {kind}")
    return [dict(combination) for combination in itertools.product(*axes)]


def draw_value(spec: dict, rng: random.Random) -> Any:
    """One value of a parameter for random search (W&B's distributions that have a fixed
    meaning; others raise)."""
    kind = distribution(spec)
    q = spec.get("q", 1.0)
    draws = {
        "constant": lambda: spec["value"],
        "categorical": lambda: rng.choice(spec["values"]),
        "categorical_w_probabilities": lambda: rng.choices(spec["values"], spec["probabilities"])[
            0
        ],
        "int_uniform": lambda: rng.randint(spec["min"], spec["max"]),
        "uniform": lambda: rng.uniform(spec["min"], spec["max"]),
        "q_uniform": lambda: round(rng.uniform(spec["min"], spec["max"]) / q) * q,
        "log_uniform": lambda: math.exp(rng.uniform(spec["min"], spec["max"])),
        "log_uniform_values": lambda: math.exp(
            rng.uniform(math.log(spec["min"]), math.log(spec["max"]))
        ),
        "normal": lambda: rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)),
        "log_normal": lambda: math.exp(rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0))),
    }
    if kind not in draws:
        raise SweepError(f"distribution {kind!r}: not drawn by the offline runner; use W&B")
    return draws[kind]()


def random_trials(parameters: dict, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {name: draw_value(spec, rng) for name, spec in parameters.items()} for _ in range(count)
    ]


def trials(config: dict, count: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The parameter values of each trial the runner will run, in order.

    Raises:
        SweepError: a method that needs W&B's sweep controller (bayes, custom), nested
            parameters, or random search without a count.
    """
    method = config["method"]
    if method not in LOCAL_METHODS:
        raise SweepError(
            f"method {method!r} needs a W&B server (its sweep controller chooses each trial "
            "from the results so far): run `wandb sweep <file>` then `wandb agent <id>`; the "
            f"offline runner runs {LOCAL_METHODS}"
        )
    parameters = config["parameters"]
    for name, spec in parameters.items():
        if "parameters" in spec:
            raise SweepError(f"parameters.{name}: nested parameters are not run offline")
    if method == "grid":
        found = grid_trials(parameters)
        return found[:count] if count else found
    count = count or config.get("run_cap")
    if not count:
        raise SweepError("random search runs without end: give --count N (or run_cap)")
    return random_trials(parameters, count, seed)


def command_args(values: dict[str, Any]) -> dict[str, list[str]]:
    """The agent's argument formats of one trial (``args``: ``--key=value``, ...). W&B's own
    function (``wandb.sdk.launch.sweeps.utils.create_sweep_command_args``) where it imports."""
    command = {"args": {k: {"value": v} for k, v in values.items()}}
    try:
        from wandb.sdk.launch.sweeps.utils import create_sweep_command_args
    except ImportError:  # the same formats, as in wandb 0.31
        flags = [f"--{k}={v}" for k, v in values.items()]
        return {
            "args": flags,
            "args_no_hyphens": [f[2:] for f in flags],
            "args_no_equals": [x for k, v in values.items() for x in (f"--{k}", str(v))],
            "args_no_boolean_flags": [
                f"--{k}" if v is True else f"--{k}={v}" for k, v in values.items() if v is not False
            ],
            "args_json": [json.dumps(values)],
        }
    return create_sweep_command_args(command)


def agent_command(
    config: dict, values: dict[str, Any], before_args: list[str] | None = None
) -> list[str]:
    """The command line ``wandb agent`` runs for a trial with these parameter values: the
    file's ``command`` (default ``${env} ${interpreter} ${program} ${args}``) with its macros
    expanded as in ``wandb.wandb_agent.Agent._command_run``; ``before_args`` goes just before
    the parameters (the offline runner's trial config).

    Raises:
        SweepError: an unknown macro.
    """
    command = [
        str(c)
        for c in config.get("command") or ["${env}", "${interpreter}", "${program}", "${args}"]
    ]
    macros = command_args(values) | {
        "env": [] if platform.system() == "Windows" else ["/usr/bin/env"],
        "interpreter": ["python"],
        "program": [str(config.get("program", ""))],
    }
    out: list[str] = []
    for chunk in command:
        chunk = re.sub(r"\$\{envvar:([A-Z0-9_]*)\}", lambda m: os.environ.get(m[1], m[1]), chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            if chunk[2:-1] not in COMMAND_MACROS:
                raise SweepError(f"command: macro {chunk} is not one the runner expands")
            if chunk[2:-1].startswith("args"):
                out += before_args or []
            out += macros[chunk[2:-1]]
        else:
            out.append(chunk)
    return out
