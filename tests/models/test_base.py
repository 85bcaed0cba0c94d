"""PoseEstimator, the base class: the training step (weighted terms, what it logs, what it
refuses), the feature call, the hyperparameters of every family, ``init_checkpoint`` (loaded at
fit start unless resuming), frozen parts, and the flip test of every family (known answers and
flip equivariance)."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from unittest.mock import PropertyMock, patch

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from lightning_pose.cli import main
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import (
    DeepPose,
    DeepPoseCascade,
    HeatmapPose,
    MultiResolutionTrunk,
    MultiTaskPose,
    PoseEstimator,
    SimCCPose,
)
from lightning_pose.models.base import flip_batch, mirror_keypoints
from tests.models.test_deeppose import TinyTrunk, make_batch
from tests.models.test_multitask import cli_args

K = LSP_SKELETON.num_joints


def build(family: str) -> PoseEstimator:
    torch.manual_seed(0)
    if family == "deeppose":
        return DeepPose(TinyTrunk(), LSP_SKELETON)
    if family == "multitask":
        return MultiTaskPose(TinyTrunk(), LSP_SKELETON, window_grid=(4, 4))
    trunk = MultiResolutionTrunk(channels=4, out_channels=8)
    return HeatmapPose(trunk, LSP_SKELETON, window_size=64.0)


class TwoTerms(DeepPose):
    """DeepPose with fixed training terms: a weighted second term and a monitor."""

    monitors = ("share",)

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {
            "regression": torch.tensor(2.0),
            "aux": torch.tensor(3.0),
            "share": torch.tensor(0.5),
        }

    def loss_weights(self) -> dict[str, float]:
        return {"regression": 1.0, "aux": 0.1}


def test_the_training_step_sums_the_weighted_terms_and_logs_each() -> None:
    """2.0 + 0.1 x 3.0; the monitor 0.5 is logged, not summed; terms are logged unweighted."""
    model = TwoTerms(TinyTrunk(), LSP_SKELETON)
    logged: dict[str, Tensor] = {}
    model.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    model.log_dict = lambda values, **kwargs: logged.update(values)
    loss = model.training_step(make_batch(), 0)
    assert_close(loss, torch.tensor(2.3), rtol=0, atol=1e-6)
    expected = {"train/loss": 2.3, "train/loss_regression": 2.0, "train/loss_aux": 3.0}
    expected["train/share"] = 0.5
    assert set(logged) == set(expected)
    for key, value in expected.items():
        assert_close(logged[key], torch.tensor(value), rtol=0, atol=1e-6, msg=key)


def test_a_term_without_a_weight_is_refused() -> None:
    model = TwoTerms(TinyTrunk(), LSP_SKELETON)
    model.loss_weights = lambda: {"regression": 1.0}
    with pytest.raises(ValueError, match=r"TwoTerms.losses returned .*\(missing \['aux'\]\)"):
        model.training_step(make_batch(), 0)


def test_features_are_the_trunk_of_the_normalised_image() -> None:
    model = DeepPose(TinyTrunk(), LSP_SKELETON)
    image = make_batch()["image"]
    expected = model.trunk.conv((image - 0.5) / 0.25).relu()  # TinyTrunk's mean and std
    assert_close(model.features(image), expected, rtol=0, atol=1e-6)


HPARAMS = {
    "deeppose": (lambda: DeepPose(TinyTrunk(), LSP_SKELETON), {"init_checkpoint": None}),
    "cascade3": (
        lambda: DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=3, sigma=1.0),
        {
            "num_stages": 3,
            "sigma": 1.0,
            "samples_per_image": 14,
            "init_checkpoint": None,
            "error_stats_images": 1000,
            "image_hr_factor": 2,
        },
    ),
    "multitask": (
        lambda: MultiTaskPose(TinyTrunk(), LSP_SKELETON, part_detection_weight=0.0),
        {
            "window_grid": (7, 7),
            "regression_weight": 1.0,
            "joint_detection_weight": 0.1,
            "part_detection_weight": 0.0,
            "init_checkpoint": None,
        },
    ),
    "heatmap": (
        lambda: HeatmapPose(
            MultiResolutionTrunk(channels=4, out_channels=8), LSP_SKELETON, window_size=16.0
        ),
        {
            "training_phase": "joint",
            "fine_loss_weight": 0.1,
            "sigma": 1.5,
            "window_size": 16.0,
            "fine_sigma": 1.5,
            "subpixel": "dark",
            "coarse_loss": "mse",
            "init_checkpoint": None,
        },
    ),
    "simcc": (
        lambda: SimCCPose(TinyTrunk(), LSP_SKELETON, num_bins=(64, 48)),
        {"num_bins": (64, 48), "sigma": 4.0, "init_checkpoint": None},
    ),
}


@pytest.mark.parametrize("family", list(HPARAMS))
def test_the_hyperparameters_are_the_family_constructor_values_less_objects(family: str) -> None:
    """Saved once, by the base class, of the family's own constructor (not the base's
    ``num_stages`` where the family has none): what LightningCLI re-parses from a checkpoint."""
    build, expected = HPARAMS[family]
    model = build()
    assert dict(model.hparams) == expected
    parameters = set(inspect.signature(type(model).__init__).parameters) - {"self"}
    assert set(model.hparams) == parameters - set(model.not_hparams)


def test_init_checkpoint_loads_at_fit_start_unless_resuming(tmp_path: Path) -> None:
    source = build("multitask")
    with torch.no_grad():
        source.trunk.conv.weight.add_(1.0)
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    for ckpt_path, loaded in ((None, True), ("resumed.ckpt", False)):
        model = MultiTaskPose(
            TinyTrunk(), LSP_SKELETON, window_grid=(4, 4), init_checkpoint=str(path)
        )
        before = model.trunk.conv.weight.detach().clone()
        trainer = type("FakeTrainer", (), {"ckpt_path": ckpt_path})()
        with patch.object(MultiTaskPose, "trainer", new_callable=PropertyMock) as mock:
            mock.return_value = trainer
            model.on_fit_start()
        expected = source.trunk.conv.weight if loaded else before
        assert_close(model.trunk.conv.weight, expected, rtol=0, atol=0)


def test_init_checkpoint_names_a_part_it_cannot_fill(tmp_path: Path) -> None:
    path = tmp_path / "deeppose.ckpt"
    torch.save({"state_dict": build("deeppose").state_dict()}, path)
    model = build("heatmap")  # wants a heat-map head under head.: a regression head is there
    with pytest.raises(ValueError, match=r"model.init_checkpoint.*under 'trunk.'.*deeppose.ckpt"):
        model.load_init_checkpoint(str(path))


def test_frozen_parts_stay_in_eval_mode_and_out_of_the_optimiser() -> None:
    model = DeepPose(TinyTrunk(), LSP_SKELETON)
    model.freeze("trunk")
    model.train()
    assert model.training and model.head.training and not model.trunk.training
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.head.parameters()}
    assert not any(p.requires_grad for p in model.trunk.parameters())


# --- flip test ---------------------------------------------------------------------------
def test_mirror_keypoints_known_answer() -> None:
    points = torch.zeros(1, K, 2)
    points[0, 0] = torch.tensor([0.3, 0.1])  # right ankle
    points[0, 5] = torch.tensor([-0.1, 0.2])  # left ankle
    points[0, 13] = torch.tensor([0.05, -0.4])  # head top: its own mirror
    mirrored = mirror_keypoints(points, LSP_SKELETON.flip_permutation())
    assert_close(mirrored[0, 0], torch.tensor([0.1, 0.2]), rtol=0, atol=0)
    assert_close(mirrored[0, 5], torch.tensor([-0.3, 0.1]), rtol=0, atol=0)
    assert_close(mirrored[0, 13], torch.tensor([-0.05, -0.4]), rtol=0, atol=0)
    assert_close(
        mirror_keypoints(mirrored, LSP_SKELETON.flip_permutation()), points, rtol=0, atol=0
    )


def test_flip_batch_mirrors_the_images_only() -> None:
    batch = make_batch()
    batch["image_hr"] = torch.arange(6.0).view(1, 1, 2, 3)
    flipped = flip_batch(batch)
    assert_close(flipped["image_hr"][0, 0, 0], torch.tensor([2.0, 1.0, 0.0]), rtol=0, atol=0)
    assert_close(flipped["image"], batch["image"].flip(-1), rtol=0, atol=0)
    assert flipped["keypoints_norm"] is batch["keypoints_norm"]


def test_regression_flip_test_averages_with_the_mirrored_estimate_known_answer() -> None:
    """A head that ignores the image outputs the same estimate for the mirrored input; the
    flip test averages it with its own mirror: right ankle (0.3, 0.1) and left ankle
    (-0.1, 0.2) become (0.2, 0.15) and (-0.2, 0.15)."""
    fixed = torch.zeros(K, 2)
    fixed[0] = torch.tensor([0.3, 0.1])
    fixed[5] = torch.tensor([-0.1, 0.2])
    fixed[13] = torch.tensor([0.05, -0.4])
    model = DeepPose(TinyTrunk(), LSP_SKELETON, flip_test=True).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(fixed.reshape(-1))
    (estimate,) = model.estimate(make_batch(batch_size=1))["stages"]
    assert_close(estimate[0, 0], torch.tensor([0.2, 0.15]), rtol=0, atol=1e-7)
    assert_close(estimate[0, 5], torch.tensor([-0.2, 0.15]), rtol=0, atol=1e-7)
    assert_close(estimate[0, 13], torch.tensor([0.0, -0.4]), rtol=0, atol=1e-7)
    model.train()  # no flip test in training
    (estimate,) = model.estimate(make_batch(batch_size=1))["stages"]
    assert_close(estimate[0], fixed, rtol=0, atol=1e-7)


FAMILIES = {
    "deeppose": lambda: DeepPose(TinyTrunk(), LSP_SKELETON, flip_test=True),
    "cascade-2": lambda: DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=2, flip_test=True),
    "multitask": lambda: MultiTaskPose(
        TinyTrunk(), LSP_SKELETON, window_grid=(4, 4), flip_test=True
    ),
    "heatmap": lambda: HeatmapPose(
        MultiResolutionTrunk(channels=4, out_channels=8),
        LSP_SKELETON,
        window_size=16.0,
        flip_test=True,
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_flip_test_makes_every_family_flip_equivariant(family: str) -> None:
    """est(mirror(I)) = mirror(est(I)) for every stage and score, and the same weights without
    flip test are not equivariant (so the flip test did it)."""
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    batch = make_batch(batch_size=2, size=32)
    batch["image_hr"] = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mirrored_batch = flip_batch(batch)
    with torch.no_grad():
        estimate = model.estimate(batch)
        mirrored = model.mirror_estimate(model.estimate(mirrored_batch))
        assert set(mirrored) == set(estimate)
        for a, b in zip(estimate["stages"], mirrored["stages"], strict=True):
            assert_close(a, b, rtol=0, atol=1e-5)
        for key in set(estimate) - {"stages"}:
            assert_close(estimate[key], mirrored[key], rtol=0, atol=1e-5)
        model.flip_test = False
        plain = model.estimate(batch)["stages"][-1]
        plain_mirrored = model.mirror_estimate(model.estimate(mirrored_batch))["stages"][-1]
    assert not torch.allclose(plain, plain_mirrored, atol=1e-3)


def test_an_estimate_entry_without_a_mirror_is_refused() -> None:
    model = DeepPose(TinyTrunk(), LSP_SKELETON)
    with pytest.raises(ValueError, match="cannot mirror the estimate's 'depth'"):
        model.mirror_estimate({"stages": [torch.zeros(1, K, 2)], "depth": torch.zeros(1, K)})


@pytest.mark.parametrize("config", ["deeppose.yaml", "multitask.yaml"])
def test_validate_switches_the_flip_test_on_for_a_trained_checkpoint(
    config: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``validate --ckpt_path=... --model.init_args.flip_test=true`` on a regression family's
    checkpoint: the flip test runs (the model is not mirror-symmetric, so the loss moves)."""
    monkeypatch.chdir(tmp_path)
    common = [*cli_args(config, tiny_root), f"--trainer.default_root_dir={tmp_path}"]
    if config == "deeppose.yaml":  # no detectors, no window grid
        common.remove("--model.init_args.window_grid=[2, 2]")
    main(["fit", *common, "--trainer.max_steps=1", "--trainer.limit_val_batches=1"])
    (ckpt,) = sorted(tmp_path.rglob("last.ckpt"))
    losses = {}
    for flip in ("false", "true"):
        cli = main(
            ["validate", *common, f"--ckpt_path={ckpt}", f"--model.init_args.flip_test={flip}"]
        )
        assert cli.model.flip_test is (flip == "true")
        losses[flip] = float(cli.trainer.callback_metrics["val/loss"])
    assert all(math.isfinite(v) for v in losses.values()) and losses["true"] != losses["false"]
