"""bench/flops.py: the FLOPs of one training step counted inside a real Trainer (known answers
on a tiny model), the peak it is compared with, and a short run of the script on tiny data."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from tests.bench import load
from tests.conftest import tiny_args

flops = load("flops")


class Tiny(pl.LightningModule):
    """A depthwise 3x3 convolution (3 channels, no bias) then a linear layer 48 -> 4."""

    def __init__(self) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        self.linear = nn.Linear(48, 4, bias=False)

    def training_step(self, batch, batch_idx):
        return self.linear(self.depthwise(batch).flatten(1)).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_step_flops_known_answer() -> None:
    torch.manual_seed(0)
    counter = flops.StepFlops(step=1)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[counter],
    )  # fmt: skip
    trainer.fit(Tiny(), DataLoader(torch.rand(6, 3, 4, 4), batch_size=2))
    conv = 2 * (2 * 3 * 4 * 4) * 9  # batch 2: 96 outputs x 9 multiply-adds
    linear = 2 * 2 * 48 * 4  # (2, 48) @ (48, 4)
    # backward: the convolution's weight gradient (its input, the batch, needs none; torch's
    # own formula would count 3 x conv: groups x the weight gradient), the linear layer's two
    assert counter.by_op == {
        "aten.convolution": conv,
        "aten.convolution_backward": conv,
        "aten.mm": 3 * linear,
    }
    assert counter.flops == 2 * conv + 3 * linear
    assert counter.depthwise_forward == conv and counter.depthwise_share == 1.0


@pytest.mark.parametrize("groups", [1, 4])
def test_conv_backward_flop_against_torch(groups: int) -> None:
    """Ungrouped: the same count as torch's formula. Grouped: the forward's count per gradient
    (torch's counts the weight gradient ``groups`` times)."""
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=groups)
    x = torch.rand(2, 4, 6, 6, requires_grad=True)
    counts = {}
    for name, mapping in (
        ("torch", {}),
        ("bench", {torch.ops.aten.convolution_backward: flops.conv_backward_flop}),
    ):
        with flops.FlopCounterMode(display=False, custom_mapping=mapping) as mode:
            conv(x).sum().backward()
        counts[name] = mode.get_flop_counts()["Global"]
    forward = 2 * (2 * 8 * 6 * 6) * (4 // groups) * 9
    assert counts["bench"][torch.ops.aten.convolution] == forward
    assert counts["bench"][torch.ops.aten.convolution_backward] == 2 * forward
    torch_backward = counts["torch"][torch.ops.aten.convolution_backward]
    assert torch_backward == forward + groups * forward


def test_peak_counts_bf16_only_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    opts = argparse.Namespace(threads=2, ghz=2.5, fp32_flop_per_cycle=32, bf16_flop_per_cycle=64)
    monkeypatch.setattr(flops, "native_bf16_flag", lambda: "avx512_bf16")
    assert flops.peak_gflops(opts, "32-true") == 160.0
    assert flops.peak_gflops(opts, "bf16-mixed") == 320.0
    monkeypatch.setattr(flops, "native_bf16_flag", lambda: None)
    assert flops.peak_gflops(opts, "bf16-mixed") == 160.0


def test_warmup_must_leave_the_counted_step_untimed(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        flops.parse(["--warmup", "1", "--ghz", "2.5"])
    assert exit_info.value.code == 2  # argparse's usage error
    assert "--warmup must be >= 2 (step 1 is counted, not timed), got 1" in capsys.readouterr().err


def test_flops_script_on_tiny_data(tiny_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "flops.md"
    rows = flops.main(
        ["--variants", "deeppose", "--seconds", "0.5", "--warmup", "2", "--threads", "1",
         "--ghz", "2.5", "--data-root", str(tiny_root), "--output", str(output), "--",
         *tiny_args(tiny_root)[1:]]
    )  # fmt: skip
    assert [r["precision"] for r in rows] == ["32-true", "bf16-mixed"]
    # the same step has the same FLOPs in either precision
    assert rows[0]["gflop_step"] == rows[1]["gflop_step"] > 0
    assert all(r["images_per_s"] > 0 and r["gflops"] > 0 for r in rows)
    assert "| deeppose | 64 | 2 | 32-true |" in output.read_text()
