"""Every code block of README.md and docs/*.md runs as written, each kind checked as follows.

* ``bash``: the block runs in bash itself (variables, loops, continuation lines and comments as
  a reader's shell reads them), in a folder that links the repository's files (``conf/``,
  ``sweeps/``, ``slurm/``, the Makefile, ...) and holds the README's ``mine/coco.yaml``, with
  every program it calls replaced by a recorder; a program the test does not know fails it.
  Each recorded call is then checked there without training (a snippet that trains for an hour
  cannot run in a test):

  - ``python -m lightning_pose fit|validate|test|predict ...`` and ``lightning-pose ...``: the
    configuration parses and resolves (``--print_config``, which exits before any data or
    model is touched; checkpoints are not read);
  - ``... sweep FILE [-- extra]``: the sweep file loads and gives its trial commands (the
    runner's ``--dry-run`` without writing its results folder);
  - ``... export ...``: the export command's options parse;
  - ``... fit-cascade ...``: its options parse and the rest as ``fit --print_config``;
    ``... convert ...``: its options parse (``tests/data/test_convert.py`` runs it);
    ``... budget ...``: its options parse (an hour of training);
    ``... report KIND ...``: the kind exists and its ``--help`` runs (a report reads runs);
  - ``make TARGET``: ``make -n TARGET`` (the target exists; ``make train`` trains for an hour);
  - ``sbatch SCRIPT`` and ``[sudo] slurm/SCRIPT.sh``: the script exists and ``bash -n``
    parses it (no SLURM here); ``squeue``, ``scancel``, ``tail`` of a job's log: not run;
    ``sudo apt-get install``: not run (system packages);
  - ``wandb sweep FILE``: the file loads; ``wandb login``/``agent`` need an account: not run;
  - ``cp``: not run (it copies a trained run's checkpoint).
* ``python``: run in full, in a folder holding what it reads (a generated video
  ``predictions.csv`` in the package's own layout).
* ``yaml``: loads with ``yaml.safe_load``; the README's ``mine/coco.yaml`` also runs in full in
  ``tests/test_readme_coco.py`` with its three commands.
* ``text`` and untagged blocks: usage synopses and diagrams, not code; not run.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
RECORDED = ("python", "lightning-pose", "make", "sbatch", "wandb", "cp", "taskset", "sudo")
RECORDED += ("apt-get", "squeue", "scancel", "tail")
NEEDS_A_CLUSTER = ("squeue", "scancel", "tail")  # a running SLURM and its jobs' logs
KINDS = ("bash", "python", "yaml", "text", "")
CLI_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def doc_blocks() -> list[tuple[str, str, str]]:
    """``(id "file:line", language, body without the list indentation)`` of every block."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            indent, lang, body = match.groups()
            body = "\n".join(line[len(indent) :] for line in body.splitlines()) + "\n"
            line = text[: match.start()].count("\n") + 1
            found.append((f"{doc.relative_to(REPO)}:{line}", lang, body))
    return found


BLOCKS = doc_blocks()


def by_kind(kind: str) -> list:
    return [pytest.param(body, id=where) for where, lang, body in BLOCKS if lang == kind]


def test_every_block_is_of_a_kind_the_test_checks() -> None:
    assert len(BLOCKS) > 20
    unknown = [(where, lang) for where, lang, _ in BLOCKS if lang not in KINDS]
    assert not unknown, f"blocks whose language this test does not check: {unknown}"


def workspace(tmp_path: Path) -> Path:
    """A folder as a reader's: the repository's files linked, and ``mine/coco.yaml`` written as
    the README's "Your own keypoints" says."""
    folder = tmp_path / "workspace"
    folder.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("runs", "outputs", "mine"):
            (folder / entry.name).symlink_to(entry)
    readme = [(where, body) for where, lang, body in BLOCKS if lang == "yaml"]
    coco = [body for where, body in readme if body.startswith("# mine/coco.yaml")]
    assert len(coco) == 1, "the README's mine/coco.yaml block"
    (folder / "mine").mkdir()
    (folder / "mine" / "coco.yaml").write_text(coco[0])
    return folder


def recorded_calls(body: str, tmp_path: Path, cwd: Path) -> list[list[str]]:
    """Run ``body`` in bash in ``cwd`` with every program a recorder; returns the calls, in
    order, as argument lists (program first)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name in RECORDED:
        recorder = bin_dir / name
        recorder.write_text(
            '#!/bin/bash\nprintf "%q " "${0##*/}" "$@" >> "$RECORD"\necho >> "$RECORD"\n'
        )
        recorder.chmod(0o755)
    record.write_text("")
    env = {"PATH": str(bin_dir), "RECORD": str(record), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", "-c", body], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr, f"bash: {done.stderr or done.returncode}"
    calls = [shlex.split(line) for line in record.read_text().splitlines()]
    calls = [call[3:] if call[0] == "taskset" else call for call in calls]  # taskset -c N cmd
    return [call[1:] if call[0] == "sudo" else call for call in calls]


def check_lightning_cli(args: list[str]) -> None:
    from lightning_pose.cli import main

    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()) as out:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0, f"{shlex.join(args)}: exit {exit_info.value.code}"
    assert "trainer:" in out.getvalue()


def check_package_command(args: list[str]) -> None:
    """``lightning-pose ARGS`` (or ``python -m lightning_pose ARGS``)."""
    subcommand, rest = args[0], args[1:]
    if subcommand in CLI_SUBCOMMANDS:
        check_lightning_cli(args)
    elif subcommand == "sweep":
        from lightning_pose.cli.sweep import trial_command
        from lightning_pose.cli.sweep_config import load_sweep, trials

        extra = rest[rest.index("--") + 1 :] if "--" in rest else []
        config = load_sweep(Path(rest[0]))
        commands = [trial_command(config, v, Path("trial.yaml"), extra) for v in trials(config)]
        assert commands and all(extra == c[-len(extra) :] for c in commands if extra)
    elif subcommand == "export":
        from lightning_pose.cli.export import parse_args

        options, overrides = parse_args(rest)
        assert options.format == "onnx" and options.config
    elif subcommand == "fit-cascade":
        from lightning_pose.cli.fit_cascade import parse

        options, fit_args = parse(rest)
        assert options.depth >= 1
        check_lightning_cli(["fit", *fit_args])
    elif subcommand == "convert":
        from lightning_pose.data.convert import parse_args

        assert parse_args(rest).dataset in ("lspet", "lsp", "flic")
    elif subcommand == "budget":
        from lightning_pose.cli.budget import parse_args

        assert parse_args(rest).budget_min > 0
    elif subcommand == "report":
        from lightning_pose.cli.report import KINDS, report_main

        assert rest and rest[0] in KINDS, f"lightning-pose report {shlex.join(rest)}"
        with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()):
            report_main(rest[0])(["--help"])
        assert exit_info.value.code == 0
    else:
        pytest.fail(f"lightning-pose {subcommand}: no check for this subcommand")


def check_call(call: list[str]) -> None:
    program, args = call[0], call[1:]
    if program == "lightning-pose":
        check_package_command(args)
    elif program == "python" and args[:2] == ["-m", "lightning_pose"]:
        check_package_command(args[2:])
    elif program == "make":
        dry = subprocess.run(["make", "-n", *args], capture_output=True, text=True)
        assert dry.returncode == 0, f"make -n {shlex.join(args)}: {dry.stderr}"
    elif program == "sbatch" or program.startswith("slurm/"):
        script = Path(
            program
            if program.startswith("slurm/")
            else next(a for a in args if a.endswith(".sbatch"))
        )
        assert script.is_file() and subprocess.run(["bash", "-n", str(script)]).returncode == 0
    elif program in NEEDS_A_CLUSTER or (program == "apt-get" and args[0] == "install"):
        pass
    elif program == "wandb" and args[0] == "sweep":
        from lightning_pose.cli.sweep_config import load_sweep

        assert load_sweep(Path(args[1]))["parameters"]
    elif program == "wandb" and args[0] in ("login", "agent"):
        pass  # needs a W&B account
    elif program == "cp":
        pass  # copies a trained run's checkpoint
    else:
        pytest.fail(f"{shlex.join(call)}: no check for this program")


@pytest.mark.parametrize("body", by_kind("bash"))
def test_bash_block_runs_as_written(
    body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = workspace(tmp_path)
    monkeypatch.chdir(cwd)
    calls = recorded_calls(body, tmp_path, cwd)
    assert calls, "a bash block that calls nothing"
    for call in calls:
        check_call(call)


@pytest.mark.parametrize("body", by_kind("python"))
def test_python_block_runs_as_written(body: str, tmp_path: Path) -> None:
    from lightning_pose.callbacks.video_outputs import frames_csv
    from lightning_pose.data.skeleton import LSP_SKELETON

    rng = np.random.default_rng(0)
    csv_text = frames_csv(
        list(LSP_SKELETON.joints),
        np.arange(3) / 25.0,
        rng.uniform(0, 99, (3, 14, 2)),
        rng.uniform(size=(3, 14)),
    )
    (tmp_path / "outputs" / "vtest").mkdir(parents=True)
    (tmp_path / "outputs" / "vtest" / "predictions.csv").write_text(csv_text)
    done = subprocess.run(
        [sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.parametrize("body", by_kind("yaml"))
def test_yaml_block_loads(body: str) -> None:
    assert isinstance(yaml.safe_load(body), dict)
