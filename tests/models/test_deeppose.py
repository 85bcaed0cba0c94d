"""DeepPose stage 1: forward/backward on every backbone kind, decoding with the box, and the
validation metrics it logs (known answers with a head whose output is fixed)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_pose.models import DeepPose, ResNetBackbone
from lightning_pose.models.deeppose import normalise_image
from lightning_pose.skeleton import LSP

K = LSP.num_joints
WRISTS = [6, 11]  # right_wrist, left_wrist


class TinyBackbone(nn.Module):
    """Conv + global average pool: the least a backbone needs (``out_features``, ``mean``,
    ``std``)."""

    out_features = 8
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, self.out_features, kernel_size=3, stride=2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(image).relu().mean(dim=(2, 3))  # (B, 8)


BACKBONES = {"tiny": TinyBackbone, "resnet18": lambda: ResNetBackbone(depth=18)}


def make_batch(batch_size: int = 2, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    visible = torch.rand(batch_size, K, generator=g) > 0.2
    return {
        "image": torch.rand(batch_size, 3, size, size, generator=g),
        "keypoints_norm": torch.rand(batch_size, K, 2, generator=g) - 0.5,
        "keypoints_px": torch.rand(batch_size, K, 2, generator=g) * 100,
        "visible": visible,
        "box": torch.tensor([[50.0, 40.0, 100.0, 100.0]]).repeat(batch_size, 1),
        "torso_diameter_px": torch.full((batch_size,), 40.0),
        "head_size_px": torch.full((batch_size,), 20.0),
        "index": torch.arange(batch_size),
    }


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.parametrize("backbone", list(BACKBONES), ids=list(BACKBONES))
def test_forward_and_every_parameter_gets_a_finite_gradient(backbone: str) -> None:
    torch.manual_seed(0)
    model = DeepPose(BACKBONES[backbone](), joint_names=LSP.joints).train()
    batch = make_batch()
    pred = model.regressor(batch["image"])
    assert pred.shape == (2, K, 2)
    assert torch.isfinite(pred).all()
    loss = model.training_step(batch, 0)
    assert loss.shape == () and torch.isfinite(loss) and loss > 0
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_regression_head_starts_near_the_box_centre() -> None:
    torch.manual_seed(0)
    model = DeepPose(TinyBackbone(), joint_names=LSP.joints).eval()
    pred = model.regressor(make_batch()["image"])
    torch.testing.assert_close(pred, torch.zeros_like(pred), rtol=0, atol=0.05)


def test_normalise_image_uses_the_backbone_statistics() -> None:
    image = torch.tensor([0.5, 0.75, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    expected = torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalise_image(image, TinyBackbone()), expected)


def fixed_output_model(offset_norm: torch.Tensor) -> DeepPose:
    """DeepPose whose head ignores the image and outputs ``offset_norm`` (K, 2)."""
    model = DeepPose(TinyBackbone(), joint_names=LSP.joints).eval()
    with torch.no_grad():
        model.regressor.head.weight.zero_()
        model.regressor.head.bias.copy_(offset_norm.reshape(-1))
    return model


def test_predict_keypoints_px_decodes_with_the_box() -> None:
    offset = torch.zeros(K, 2)
    offset[0] = torch.tensor([0.25, -0.5])
    model = fixed_output_model(offset)
    batch = make_batch()
    batch["box"] = torch.tensor([[10.0, 20.0, 100.0, 50.0], [0.0, 0.0, 8.0, 4.0]])
    with torch.no_grad():
        pred_px = model.predict_keypoints_px(batch)
    assert pred_px.shape == (2, K, 2)
    # joint 0: centre + (0.25 w, -0.5 h); every other joint: the box centre
    torch.testing.assert_close(pred_px[0, 0], torch.tensor([35.0, -5.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(pred_px[1, 0], torch.tensor([2.0, -2.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        pred_px[0, 1:], torch.tensor([10.0, 20.0]).expand(K - 1, 2), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(pred_px[1, 1:], torch.zeros(K - 1, 2), rtol=0, atol=1e-5)
    out = model.predict_step(batch, 0)
    torch.testing.assert_close(out["keypoints_px"], pred_px)
    torch.testing.assert_close(out["index"], batch["index"])


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict[str, torch.Tensor]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.samples[i]


def test_validation_logs_pdj_pckh_per_group_and_loss_known_answer() -> None:
    """The model predicts the box centre (50, 50) for every joint. Wrists are labelled there;
    every other joint 100 px to the right (box-normalised +1 in x). Torso diameter 100 px, so
    PDJ@0.2 counts joints within 20 px: exactly the wrists, 2 of 14."""
    model = fixed_output_model(torch.zeros(K, 2))
    keypoints_px = torch.tensor([150.0, 50.0]).repeat(K, 1)
    keypoints_px[WRISTS] = torch.tensor([50.0, 50.0])
    keypoints_norm = torch.tensor([1.0, 0.0]).repeat(K, 1)
    keypoints_norm[WRISTS] = 0.0
    sample = {
        "image": torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)),
        "keypoints_norm": keypoints_norm,
        "keypoints_px": keypoints_px,
        "visible": torch.ones(K, dtype=torch.bool),
        "box": torch.tensor([50.0, 50.0, 100.0, 100.0]),
        "torso_diameter_px": torch.tensor(100.0),
        "head_size_px": torch.tensor(10.0),
        "index": torch.tensor(0),
    }
    loader = DataLoader(ListDataset([sample, sample, sample]), batch_size=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (logged,) = trainer.validate(model, dataloaders=loader, verbose=False)
    expected = {
        "val/pdj@0.2": 2 / 14,
        "val/pdj@0.05": 2 / 14,
        "val/pdj@0.2/wrist": 1.0,
        "val/pdj@0.2/ankle": 0.0,
        "val/pdj@0.2/head_top": 0.0,
        "val/pckh@0.5/wrist": 1.0,  # 0 px <= 0.5 x 10 px
        "val/pckh@0.5": 2 / 14,
        "val/loss": 12 / 14,  # (12 joints x 1^2) / 14 visible joints
    }
    for key, value in expected.items():
        assert key in logged, f"{key} not logged; got {sorted(logged)}"
        torch.testing.assert_close(
            torch.as_tensor(logged[key]).double(), torch.tensor(value).double(), rtol=0, atol=1e-6
        )
    groups = {k.split("/")[-1] for k in logged if k.startswith("val/pdj@0.2/")}
    assert groups == set(LSP.groups())
