"""Where a report was made: the commit, the CPU, whether it computes bf16 natively.

Every report (``lightning-pose report ...``) and every ``bench/`` script names these the same
way (``from lightning_pose.reports import provenance``). The commit is that of the checkout
the package is imported from (an editable install: the repository)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # lightning_pose/reports/provenance.py
_UNCOMMITTED = " (working tree with uncommitted changes)"


def run_text(command: list[str], cwd: Path = REPO) -> str:
    """``command``'s standard output, stripped; "" where it cannot run or fails."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def commit(paths: list[str] | None = None, repo: Path = REPO) -> str:
    """The short commit of ``repo``'s HEAD, marked where ``paths`` (default: the whole working
    tree) differ from it: " (PATHS modified)", " (working tree with uncommitted changes)";
    "unknown" outside a git checkout (e.g. a copy of the tree on a device machine)."""
    found = run_text(["git", "rev-parse", "--short", "HEAD"], repo) or "unknown"
    status = ["git", "status", "--porcelain", "--", *(paths or [])]
    if found != "unknown" and run_text(status, repo):
        found += f" ({', '.join(paths)} modified)" if paths else _UNCOMMITTED
    return found


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), else the platform's, else "unknown"."""
    for line in run_text(["lscpu"]).splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def native_bf16() -> str:
    """The CPU feature that computes bf16 natively (``amx_bf16``, ``avx512_bf16``), else
    "no (emulated)" (:func:`lightning_pose.runtime.precision.native_bf16_flag`; imports torch)."""
    from lightning_pose.runtime.precision import native_bf16_flag

    return native_bf16_flag() or "no (emulated)"
