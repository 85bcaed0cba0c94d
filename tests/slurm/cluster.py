"""A one-node SLURM for the tests, started and stopped with ``slurm/one_node.sh`` (the
commands ``docs/CLUSTER.md`` gives users), and the few client calls the tests make."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ONE_NODE = REPO / "slurm" / "one_node.sh"
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "sinfo")
INSTALL = "apt-get install -y slurm-wlm munge"
# Set (by .ci/run) where the SLURM tests must run: a missing package fails them instead.
REQUIRE_ENV = "LIGHTNING_POSE_REQUIRE_SLURM"


def unavailable() -> str | None:
    """Why a one-node SLURM cannot start here (None: it can)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"SLURM tests need slurm-wlm and munge ({', '.join(missing)} not found; {INSTALL})"
    if os.geteuid() != 0:
        return "SLURM tests need root (slurmd starts the jobs as their user)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Job:
    id: str
    log: Path


class OneNodeSlurm:
    """A running one-node cluster whose state is under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = os.environ | {"SLURM_CONF": str(folder / "slurm.conf")}

    def start(self) -> None:
        ports = {"SLURMCTLD_PORT": str(_free_port()), "SLURMD_PORT": str(_free_port())}
        result = subprocess.run(
            [str(ONE_NODE), "start", str(self.folder)],
            env=os.environ | ports,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"{ONE_NODE} start failed:\n{result.stdout}{result.stderr}")

    def stop(self) -> None:
        subprocess.run(
            [str(ONE_NODE), "stop", str(self.folder)], capture_output=True, text=True, timeout=180
        )

    def run(self, *command: str, cwd: Path | None = None, env: dict | None = None) -> str:
        result = subprocess.run(
            command, env=self.env | (env or {}), cwd=cwd, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}\n{result.stderr}")
        return result.stdout

    def sbatch(self, args: list[str], cwd: Path, env: dict | None = None) -> str:
        """Submit; the job id (``12`` or, for an array, its array job id)."""
        return self.run("sbatch", "--parsable", *args, cwd=cwd, env=env).strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (the first array task's for an array job)."""
        text = self.run("scontrol", "-o", "show", "job", job_id).splitlines()[0]
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def wait(self, job_id: str, states: tuple[str, ...], timeout_s: float, log: Path | None = None):
        """Wait for the job (every task of an array) to reach one of ``states``; its fields."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.run("scontrol", "-o", "show", "job", job_id).splitlines()
            tasks = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]
            if tasks and all(t["JobState"] in states for t in tasks):
                return tasks[0]
            if time.monotonic() > deadline:
                tail = log.read_text()[-4000:] if log is not None and log.is_file() else ""
                self.run("scancel", job_id)
                raise TimeoutError(
                    f"job {job_id} not {'/'.join(states)} within {timeout_s:.0f} s: "
                    f"{[t['JobState'] for t in tasks]}\n{tail}"
                )
            time.sleep(0.5)

    def start_now(self, job_id: str) -> None:
        """A requeued job waits SLURM's fixed requeue delay (its BeginTime is 2 minutes on);
        start it at once."""
        self.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")


def wait_for_file(path: Path, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            tail = log.read_text()[-4000:] if log is not None and log.is_file() else ""
            raise TimeoutError(f"{what}: no {path} within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.2)


def fresh_clone(target: Path) -> Path:
    """``git clone`` of this repository plus its uncommitted work (changes to tracked files,
    new files git does not ignore): what a fresh clone has once the work is committed, without
    ignored files such as ``runs/``; with this checkout's ``.venv`` linked in (the scripts run
    ``.venv/bin/python``)."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    git = {"cwd": REPO, "capture_output": True, "check": True}
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], **git).stdout
    if diff:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=target, input=diff, check=True)
    new = subprocess.run(["git", "ls-files", "-z", "--others", "--exclude-standard"], **git)
    for name in filter(None, new.stdout.decode().split("\0")):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    (target / ".venv").symlink_to(REPO / ".venv")
    return target
