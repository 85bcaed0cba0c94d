"""Where a report was made: the commit of this checkout (marked where the named paths differ
from it), and "unknown" outside a git checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lightning_pose.reports import provenance


def test_commit_is_head_unmarked_for_paths_without_changes() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=provenance.REPO, capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert provenance.commit(["no/such/path/in/the/tree"]) == head


def test_commit_marks_a_modified_path(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git("rev-parse", "--short", "HEAD")
    assert provenance.commit(repo=tmp_path) == head
    (tmp_path / "a.txt").write_text("two\n")
    assert provenance.commit(["a.txt"], repo=tmp_path) == f"{head} (a.txt modified)"
    assert provenance.commit(repo=tmp_path) == f"{head} (working tree with uncommitted changes)"


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    assert provenance.commit(repo=tmp_path) == "unknown"
