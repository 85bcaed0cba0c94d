"""Shared fixtures: the real annotation files in ../shared/data and tiny generated images."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch

from lightning_pose.data.datamodule import split_indices
from lightning_pose.data.readers import FLIC, LSP

os.environ.setdefault("WANDB_MODE", "disabled")  # never block on or log in to W&B in tests
os.environ.setdefault("WANDB_SILENT", "true")

TINY_SAMPLES = 4


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that sets ``torch.set_num_threads`` (the bench scripts do) leaves the thread count
    of the tests after it as it found it: a fit's floating-point sums, hence its losses, depend
    on it (``tests/test_resume.py`` compares an in-process fit with a subprocess one)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_args(root: Path, max_samples: int | None = TINY_SAMPLES) -> list[str]:
    """CLI overrides for a fast run on a generated data root: 64 px, a ResNet-18, batch 2,
    no loader workers, the CPU; ``max_samples`` images per split (None: all)."""
    args = [
        f"--data.root={root}",
        "--data.input_size=64",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.accelerator=cpu",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
    ]
    return args if max_samples is None else [*args, f"--data.max_samples={max_samples}"]


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODEL_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"


def model_config_stacks() -> list[tuple[Path, ...]]:
    """Every model a user can select: each whole model file ``conf/model/<name>.yaml`` alone,
    and each overlay ``conf/model/<name>/<variant>.yaml`` layered over ``<name>.yaml`` (the
    folder names the file it changes)."""
    whole = sorted(MODEL_DIR.glob("*.yaml"))
    overlays = sorted(MODEL_DIR.glob("*/*.yaml"))
    for overlay in overlays:
        if not (MODEL_DIR / f"{overlay.parent.name}.yaml").is_file():
            raise ValueError(f"{overlay}: no conf/model/{overlay.parent.name}.yaml to layer over")
    return [(c,) for c in whole] + [(MODEL_DIR / f"{o.parent.name}.yaml", o) for o in overlays]


def stack_id(stack: tuple[Path, ...]) -> str:
    """``deeppose``, ``heatmap_budget+refined``."""
    return "+".join(p.stem for p in stack)


def stack_args(stack: tuple[Path, ...]) -> list[str]:
    """``-c FILE`` for each file of a stack, base first."""
    return [arg for path in stack for arg in ("-c", str(path))]


def write_image(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)


def write_lspet(folder: Path, n: int) -> None:
    """A generated LSPet: ``joints.mat`` (14, 3, n), 64x48 images, joints inside the image,
    about 10 % of them not labelled."""
    rng = np.random.default_rng(0)
    joints = np.zeros((14, 3, n))
    joints[:, 0, :] = rng.uniform(1, 64, size=(14, n))  # 1-based MATLAB x
    joints[:, 1, :] = rng.uniform(1, 48, size=(14, n))
    joints[:, 2, :] = rng.uniform(size=(14, n)) > 0.1
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "joints.mat", {"joints": joints})
    for i in range(n):
        write_image(folder / "images" / f"im{i + 1:05d}.jpg", 64, 48, seed=i)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "lspet" / "joints.mat").exists():
        pytest.fail(f"real annotation files expected in {SHARED_DATA} (see its README.md)")
    return SHARED_DATA


@pytest.fixture
def tiny_root(tmp_path: Path, shared_data: Path) -> Path:
    """A data root with the real annotation files and generated images for the first examples.

    lspet: a generated joints.mat (14, 3, 24) with 64x48 images (joints inside the image).
    lsp, flic: the real joints.mat / examples.mat with generated 80x100 / 720x480 images for
    the first TINY_SAMPLES examples of each split (use ``data.max_samples=TINY_SAMPLES``).
    """
    root = tmp_path / "data"
    write_lspet(root / "lspet", 24)

    for name, size in (("lsp", (80, 100)), ("flic", (720, 480))):
        (root / name).mkdir()
        mat = "joints.mat" if name == "lsp" else "examples.mat"
        os.symlink(shared_data / name / mat, root / name / mat)
        annotations = {"lsp": LSP(), "flic": FLIC()}[name].read(root)
        splits = split_indices(annotations, val_every=10)
        for indices in splits.values():
            for i in indices[:TINY_SAMPLES]:
                write_image(annotations.image_paths[i], *size, seed=int(i))
    return root


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Generated LSPet-layout data (30 images) and one uninterrupted in-process fit on it
    (``tests.test_resume.fit_args``), run once per session: (data root, its run folder). The
    interrupted-and-resumed fits of the resume and fault tests end as this one does."""
    from lightning_pose.cli import main
    from tests.test_resume import fit_args

    base = tmp_path_factory.mktemp("uninterrupted")
    root = base / "data"
    write_lspet(root / "lspet", 30)
    old = os.getcwd()
    os.chdir(base)
    try:
        main(fit_args(root))
    finally:
        os.chdir(old)
    return root, base / "runs" / "lspet" / "version_0"
