"""DeepPose stage 1: decoding with the box, and the validation metrics it logs (known answers
with a head whose output is fixed)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import DeepPose
from lightning_pose.models.trunks import Trunk

K = LSP_SKELETON.num_joints
WRISTS = [6, 11]  # right_wrist, left_wrist


class TinyTrunk(Trunk):
    """One strided convolution: the least a trunk needs."""

    out_channels = 8
    stride = 2
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, self.out_channels, kernel_size=3, stride=2, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(image).relu()  # (B, 8, H/2, W/2)


def make_batch(batch_size: int = 2, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labelled = torch.rand(batch_size, K, generator=g) > 0.2
    return {
        "image": torch.rand(batch_size, 3, size, size, generator=g),
        "keypoints_norm": torch.rand(batch_size, K, 2, generator=g) - 0.5,
        "keypoints_px": torch.rand(batch_size, K, 2, generator=g) * 100,
        "labelled": labelled,
        "visible": labelled,
        "box": torch.tensor([[50.0, 40.0, 100.0, 100.0]]).repeat(batch_size, 1),
        "torso_diameter_px": torch.full((batch_size,), 40.0),
        "head_size_px": torch.full((batch_size,), 20.0),
        "index": torch.arange(batch_size),
    }


def fixed_output_model(offset_norm: torch.Tensor) -> DeepPose:
    """DeepPose whose head ignores the image and outputs ``offset_norm`` (K, 2)."""
    model = DeepPose(TinyTrunk(), skeleton=LSP_SKELETON).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(offset_norm.reshape(-1))
    return model


def test_predict_step_decodes_with_the_box() -> None:
    offset = torch.zeros(K, 2)
    offset[0] = torch.tensor([0.25, -0.5])
    model = fixed_output_model(offset)
    batch = make_batch()
    batch["box"] = torch.tensor([[10.0, 20.0, 100.0, 50.0], [0.0, 0.0, 8.0, 4.0]])
    with torch.no_grad():
        out = model.predict_step(batch, 0)
    pred_px = out["keypoints_px"]
    assert pred_px.shape == (2, K, 2)
    torch.testing.assert_close(out["boxes_px"], batch["box"], rtol=0, atol=0)  # written as is
    # joint 0: centre + (0.25 w, -0.5 h); every other joint: the box centre
    torch.testing.assert_close(pred_px[0, 0], torch.tensor([35.0, -5.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(pred_px[1, 0], torch.tensor([2.0, -2.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        pred_px[0, 1:], torch.tensor([10.0, 20.0]).expand(K - 1, 2), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(pred_px[1, 1:], torch.zeros(K - 1, 2), rtol=0, atol=1e-5)
    torch.testing.assert_close(out["index"], batch["index"], rtol=0, atol=1e-6)
    assert "scores" not in out  # a regressor has no per-joint confidence


def quiet_trainer() -> pl.Trainer:
    """A one-CPU Trainer that writes nothing (no logger, no checkpoints, no progress bar)."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict[str, torch.Tensor]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.samples[i]


def test_validation_logs_pdj_pckh_pcp_per_group_and_loss_known_answer() -> None:
    """The model predicts the box centre (50, 50) for every joint. Wrists are labelled there;
    every other joint 100 px to the right (box-normalised +1 in x). Torso diameter 100 px, so
    PDJ@0.2 counts joints within 20 px: exactly the wrists, 2 of 14. One wrist is occluded:
    labelled, so it still counts. No limb has both ends right, so PCP is 0."""
    model = fixed_output_model(torch.zeros(K, 2))
    keypoints_px = torch.tensor([150.0, 50.0]).repeat(K, 1)
    keypoints_px[WRISTS] = torch.tensor([50.0, 50.0])
    keypoints_px[12] = torch.tensor([150.0, 60.0])  # neck: the head segment is 10 px
    keypoints_norm = torch.tensor([1.0, 0.0]).repeat(K, 1)
    keypoints_norm[WRISTS] = 0.0
    visible = torch.ones(K, dtype=torch.bool)
    visible[WRISTS[0]] = False
    sample = {
        "image": torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)),
        "keypoints_norm": keypoints_norm,
        "keypoints_px": keypoints_px,
        "labelled": torch.ones(K, dtype=torch.bool),
        "visible": visible,
        "box": torch.tensor([50.0, 50.0, 100.0, 100.0]),
        "torso_diameter_px": torch.tensor(100.0),
        "head_size_px": torch.tensor(10.0),
        "index": torch.tensor(0),
    }
    loader = DataLoader(ListDataset([sample, sample, sample]), batch_size=2)
    (logged,) = quiet_trainer().validate(model, dataloaders=loader, verbose=False)
    expected = {
        "val/pdj@0.2": 2 / 14,
        "val/pdj@0.05": 2 / 14,
        "val/pdj@0.2/wrist": 1.0,
        "val/pdj@0.2/ankle": 0.0,
        "val/pdj@0.2/head_top": 0.0,
        "val/pckh@0.5/wrist": 1.0,  # 0 px <= 0.5 x 10 px
        "val/pckh@0.5": 2 / 14,
        "val/pcp@0.5": 0.0,
        "val/pcp@0.5/lower_arm": 0.0,
        "val/loss": 12 / 14,  # (12 joints x 1^2) / 14 labelled joints
    }
    for key, value in expected.items():
        assert key in logged, f"{key} not logged; got {sorted(logged)}"
        torch.testing.assert_close(
            torch.as_tensor(logged[key]).double(), torch.tensor(value).double(), rtol=0, atol=1e-6
        )
    groups = {k.split("/")[-1] for k in logged if k.startswith("val/pdj@0.2/")}
    assert groups == set(LSP_SKELETON.groups())
    limbs = {k.split("/")[-1] for k in logged if k.startswith("val/pcp@0.5/")}
    assert limbs == {"lower_arm", "head"}  # every other limb has length 0: not counted
    assert not any("stage" in k for k in logged)  # one stage: plain names only
    curve = model.pdj_curves["val"][1]  # (51,), the wrists are hit from threshold 0 on
    assert curve.shape == (51,)
    torch.testing.assert_close(
        torch.from_numpy(curve[:3]).double(), torch.full((3,), 2 / 14).double(), rtol=0, atol=1e-6
    )
