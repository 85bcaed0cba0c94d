"""bench/latency.py on a generated LSPet: one small variant, three images, a few seconds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.bench import load

REPO = Path(__file__).resolve().parents[2]
latency = load("latency")


def tiny_argv(tiny_root: Path, output: Path, max_images: int, *extra: str) -> list[str]:
    """bench/latency.py on DeepPose at 64 px, the generated LSPet, batches of 2, one thread."""
    return [
        "--variants", str(REPO / "conf" / "model" / "deeppose.yaml"),
        "--data-root", str(tiny_root),
        "--override=--data.input_size=64",
        "--override=--data.val_every=8",  # 24 generated images: im00008, im00016, im00024
        "--max-images", str(max_images),
        "--batch-size", "2",
        "--warmup", "1",
        "--warmup-batches", "1",
        "--threads", "1",
        "--output", str(output),
        *extra,
    ]  # fmt: skip


def test_latency_table(tiny_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "latency.md"
    rows = latency.main(tiny_argv(tiny_root, output, 3))

    assert [(r["variant"], r["format"]) for r in rows] == [
        ("deeppose", "contiguous"),
        ("deeppose", "channels_last"),
    ]
    for row in rows:
        assert row["input"] == 64 and row["images"] == 3
        assert math.isfinite(row["other_load"]) and row["other_load"] >= 0
        for measure in ("e2e_b1", "load_b1", "model_b1", "e2e_batched"):
            for stat, value in row[measure].items():
                assert math.isfinite(value) and value > 0, (row["format"], measure, stat)
        # load + crop is the first part of end to end, image by image
        assert row["load_b1"]["median"] < row["e2e_b1"]["median"]

    text = output.read_text()
    assert "python bench/latency.py --variants" in text
    assert "Images timed: 3 of the LSPet validation split" in text
    assert "| e2e b2 median |" in text
    table = [line for line in text.splitlines() if line.startswith("| deeppose | 64 |")]
    assert [line.split(" | ")[3] for line in table] == ["contiguous", "channels_last"]
    assert len([line for line in text.splitlines() if line.startswith("| deeppose |")]) == 3
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed


def test_channels_last_batch_has_the_same_values(tiny_root: Path) -> None:
    images = sorted((tiny_root / "lspet" / "images").glob("*.jpg"))[:2]
    dataset = latency.ImageFolderDataset(images, 32, highres_factor=2)
    plain = latency.load_batch(dataset, [0, 1], "contiguous")
    nhwc = latency.load_batch(dataset, [0, 1], "channels_last")
    for key in ("image", "image_hr"):
        assert nhwc[key].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(nhwc[key], plain[key], rtol=0, atol=0)
    torch.testing.assert_close(nhwc["box"], plain["box"], rtol=0, atol=0)


def test_ckpt_needs_one_variant(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        latency.parse_args(["--ckpt", "x.ckpt", "--variants", "a.yaml", "b.yaml"])
    assert exit_info.value.code == 2  # argparse's usage error
    assert "--ckpt x.ckpt needs exactly one --variants entry" in capsys.readouterr().err


def test_compiled_rows_and_speedup_table(tiny_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "latency.md"
    trunk = "--override=--model.trunk=lightning_pose.models.ResNetTrunk"  # compiles in seconds
    rows = latency.main(tiny_argv(tiny_root, output, 2, trunk, "--compiled"))
    assert [r["format"] for r in rows] == ["contiguous", "channels_last", latency.COMPILED]
    compiled = rows[2]
    assert all(math.isfinite(v) and v > 0 for v in compiled["model_b1"].values())
    text = output.read_text()
    assert "Compiled speed-up (channels-last median / compiled median):" in text
    ratios = [line for line in text.splitlines() if line.startswith("| deeppose | ")]
    assert len(ratios) == 3 + 2  # three table rows, a channels-last ratio, a compiled ratio


def test_onnxruntime_rows_and_speedup_table(tiny_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "latency.md"
    rows = latency.main(tiny_argv(tiny_root, output, 2, "--onnxruntime"))
    assert [r["format"] for r in rows] == ["contiguous", "channels_last", latency.ONNXRUNTIME]
    for measure in ("e2e_b1", "model_b1", "e2e_batched"):
        assert all(math.isfinite(v) and v > 0 for v in rows[2][measure].values())
    text = output.read_text()
    assert "ONNX Runtime speed-up (contiguous median / onnxruntime median):" in text
    ratios = [line for line in text.splitlines() if line.startswith("| deeppose | ")]
    assert len(ratios) == 3 + 2  # three table rows, a channels-last ratio, an onnxruntime ratio
