"""Where a bench report was made: the commit, the CPU, whether it computes bf16 natively.

Every bench script's report names these the same way (``from _provenance import ...``, with
``bench/`` on ``sys.path``; a script run as ``python bench/X.py`` has it there)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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
    "no (emulated)" (:func:`lightning_pose.runs.precision.native_bf16_flag`; imports torch)."""
    sys.path.insert(0, str(REPO))
    from lightning_pose.runs.precision import native_bf16_flag

    return native_bf16_flag() or "no (emulated)"
