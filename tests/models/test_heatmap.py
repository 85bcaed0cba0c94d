"""Heat-map + position refinement (Tompson et al. 2015): known answers for the windows, the
zero-offset refinement, the training phases, flip test, init_checkpoint, and the CLI for each
pooling type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.cli import main
from lightning_pose.codecs.crop import crop_windows
from lightning_pose.codecs.heatmap import HeatmapCodec
from lightning_pose.codecs.integral import soft_argmax
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import HeatmapPose, MultiResolutionTrunk
from lightning_pose.models.losses import coordinate_l1_loss
from lightning_pose.models.trunks import AlexNetTrunk
from tests.conftest import TINY_SAMPLES
from tests.models.test_deeppose import make_batch

REPO = Path(__file__).resolve().parents[2]
K = LSP_SKELETON.num_joints


def tiny_model(**kwargs) -> HeatmapPose:
    torch.manual_seed(0)
    trunk = MultiResolutionTrunk(channels=4, out_channels=8)
    return HeatmapPose(trunk, LSP_SKELETON, **{"window_size": 16.0, **kwargs})


def test_windows_are_centred_on_the_coarse_estimate_and_crop_known_values() -> None:
    """A window around a coarse estimate of a ramp feature map reads the ramp there."""
    model = tiny_model()
    image = torch.zeros(1, 3, 32, 32)
    centres = torch.tensor([[[0.125, -0.125]]]).expand(1, K, 2)
    boxes = model.windows(centres, image)  # (1, K, 4)
    assert torch.allclose(boxes[0, 0], torch.tensor([0.125, -0.125, 0.5, 0.5]))  # 16 / 32 px
    # a ramp over an 8x8 map at stride 4: value = x in box-normalised units at cell centres
    xs = (torch.arange(8) + 0.5) / 8 - 0.5
    ramp = xs.view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    crops = crop_windows(ramp, boxes[:, :1], 5)  # (1, 1, 5, 5)
    # the centre column samples x = 0.125; the columns step by 0.5 / 5 = 0.1 (all inside the
    # outermost cell centres, so bilinear sampling of the ramp is exact)
    expected = 0.125 + 0.1 * (torch.arange(5) - 2.0)
    assert torch.allclose(crops[0, 0, 2], expected, atol=1e-6)


def test_refinement_predicting_zero_offset_returns_the_coarse_estimate_exactly() -> None:
    model = tiny_model().eval()
    batch = make_batch(batch_size=2, size=32)
    size = model.refinement.fine_size
    centred = HeatmapCodec(1.5).encode(torch.zeros(2, K, 2), torch.ones(2, K), (size, size))[0]
    model.refinement.forward = lambda maps, boxes: centred  # a fine model that says "here"
    stages = model.estimate(batch)["stages"]
    assert torch.equal(stages[1], stages[0])
    # and an offset of one fine cell moves the estimate by window / fine_size
    shifted = HeatmapCodec(1.5).encode(
        torch.full((2, K, 2), 1.0 / size) * torch.tensor([1.0, 0.0]),
        torch.ones(2, K),
        (size, size),
    )[0]
    model.refinement.forward = lambda maps, boxes: shifted
    stages = model.estimate(batch)["stages"]
    step = (16.0 / 32) / size  # box-normalised
    assert torch.allclose(
        stages[1][..., 0] - stages[0][..., 0], torch.full((2, K), step), atol=1e-5
    )
    assert torch.allclose(stages[1][..., 1], stages[0][..., 1], atol=1e-6)


def test_coarse_phase_has_one_stage_and_no_refinement() -> None:
    model = tiny_model(training_phase="coarse")
    assert model.refinement is None and model.num_stages == 1
    losses = model.losses(make_batch(batch_size=2, size=32))
    assert set(losses) == {"coarse"}


def test_joint_training_gives_every_parameter_of_both_models_a_gradient() -> None:
    model = tiny_model(window_size=64.0).train()
    loss = model.training_step(make_batch(batch_size=2, size=32), 0)
    loss.backward()
    for part in (model.trunk, model.head, model.refinement):
        for name, p in part.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fine_phase_freezes_the_coarse_model_in_eval_mode() -> None:
    model = tiny_model(training_phase="fine", window_size=64.0).train()
    coarse = torch.nn.ModuleList([model.trunk, model.head])
    assert not model.trunk.training and not model.head.training and model.refinement.training
    before = {k: v.clone() for k, v in coarse.state_dict().items()}
    loss = model.training_step(make_batch(batch_size=2, size=32), 0)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in coarse.parameters())
    assert all(p.grad is not None for p in model.refinement.parameters())
    assert {id(p) for p in model.trainable_parameters()} == {
        id(p) for p in model.refinement.parameters()
    }
    for k, v in coarse.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fine_loss_counts_only_joints_inside_their_windows() -> None:
    model = tiny_model(window_size=1e-3)  # a window far smaller than a cell: nobody is inside
    losses = model.losses(make_batch(batch_size=2, size=32))
    assert losses["fine"] == 0 and losses["fine_in_window"] == 0
    model = tiny_model(window_size=64.0)  # twice the image: every labelled joint is inside
    batch = make_batch(batch_size=2, size=32)
    assert model.losses(batch)["fine_in_window"] == 1


def _mirror(points: torch.Tensor) -> torch.Tensor:
    return points[:, LSP_SKELETON.flip_permutation()] * torch.tensor([-1.0, 1.0])


def test_flip_test_makes_the_estimate_flip_equivariant() -> None:
    """Averaging with the mirrored input's heat-maps: est(mirror(I)) = mirror(est(I))."""
    batch = make_batch(batch_size=2, size=32)
    flipped = dict(batch, image=batch["image"].flip(-1))
    model = tiny_model(flip_test=True).eval()
    for a, b in zip(
        model.estimate(batch)["stages"], model.estimate(flipped)["stages"], strict=True
    ):
        assert torch.allclose(_mirror(a), b, atol=1e-5)
    model.flip_test = False  # the same weights without it are not equivariant
    plain = model.estimate(batch)["stages"][0]
    assert not torch.allclose(_mirror(plain), model.estimate(flipped)["stages"][0], atol=1e-3)


def test_init_checkpoint_loads_the_coarse_model_only(tmp_path: Path) -> None:
    source = tiny_model(training_phase="coarse")
    with torch.no_grad():  # weights unlike any fresh model's
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "coarse.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    model = tiny_model(training_phase="fine", init_checkpoint=str(path))
    fresh = tiny_model(training_phase="fine")
    model.load_init_checkpoint(model.init_checkpoint)
    for part in ("trunk", "head"):
        for k, v in source.get_submodule(part).state_dict().items():
            assert torch.equal(model.get_submodule(part).state_dict()[k], v), f"{part}.{k}"
    for k, v in fresh.refinement.state_dict().items():  # untouched: the seed-0 init
        assert torch.equal(model.refinement.state_dict()[k], v), k
    with pytest.raises(FileNotFoundError, match="model.init_checkpoint"):
        model.load_init_checkpoint(str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no weights under \\['trunk.'\\]"):
        model.load_init_checkpoint(str(tmp_path / "other.ckpt"))


def test_integral_coarse_loss_is_l1_of_the_soft_argmax_and_decodes_by_it() -> None:
    """coarse_loss="integral" (Sun et al. 2018): the loss is the L1 distance of the maps'
    softmax expectation to the true joints, and the coarse estimate is that expectation."""
    model = tiny_model(training_phase="coarse", coarse_loss="integral").eval()
    batch = make_batch(batch_size=2, size=32)
    with torch.no_grad():
        maps, _ = model.coarse(batch["image"])
        keypoints, scores = soft_argmax(maps)
        losses = model.losses(batch)
        estimate = model.estimate(batch)
    expected = coordinate_l1_loss(keypoints, batch["keypoints_norm"], batch["labelled"])
    torch.testing.assert_close(losses["coarse"], expected)
    torch.testing.assert_close(estimate["stages"][0], keypoints)
    torch.testing.assert_close(estimate["scores"], scores)
    model.train()
    model.training_step(batch, 0).backward()
    for part in (model.trunk, model.head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    mse = tiny_model(training_phase="coarse")
    with torch.no_grad():
        assert not torch.allclose(mse.losses(batch)["coarse"], losses["coarse"])


def test_bad_arguments_raise_naming_the_key() -> None:
    with pytest.raises(ValueError, match="coarse_loss"):
        tiny_model(coarse_loss="l2")
    with pytest.raises(ValueError, match="training_phase"):
        tiny_model(training_phase="both")
    with pytest.raises(ValueError, match="needs a model.refinement"):
        tiny_model(refinement=None)
    with pytest.raises(ValueError, match="window_size"):
        tiny_model(window_size=0)
    with pytest.raises(ValueError, match="AlexNetTrunk has no feature pyramid"):
        HeatmapPose(AlexNetTrunk(), LSP_SKELETON)


@pytest.mark.parametrize("pooling", ["max", "avg", "conv"])
def test_cli_fit_then_predict_for_each_pooling(
    pooling: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    common = [
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        "-c",
        str(REPO / "conf" / "model" / "tompson.yaml"),
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        f"--data.max_samples={TINY_SAMPLES}",
        "--data.batch_size=2",
        "--data.num_workers=0",
        f"--data.root={tiny_root}",
        "--data.input_size=64",
        f"--model.init_args.trunk.init_args.pooling={pooling}",
        "--model.init_args.trunk.init_args.channels=4",
        "--model.init_args.trunk.init_args.out_channels=8",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    cli = main(["fit", *common, "--trainer.max_steps=2", "--trainer.limit_val_batches=1"])
    assert type(cli.model) is HeatmapPose and cli.trainer.global_step == 2
    assert cli.model.trunk.pooling == pooling
    metrics = cli.trainer.callback_metrics
    for key in ("train/loss_coarse", "train/loss_fine", "val/stage1/pdj@0.2", "val/stage2/pdj@0.2"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert metrics["val/stage2/pdj@0.2"] == metrics["val/pdj@0.2"]
    (ckpt,) = sorted(tmp_path.rglob("last.ckpt"))
    out = tmp_path / "pred"
    predicted = main(
        [
            "predict",
            *common,
            f"--ckpt_path={ckpt}",
            f"--trainer.callbacks.output_dir={out}",
        ]
    )
    result = np.load(out / "predictions.npz")
    n = len(predicted.datamodule.splits["predict"])
    assert n > 0 and result["keypoints_px"].shape == (n, K, 2)
    assert np.isfinite(result["keypoints_px"]).all()
    assert result["scores"].shape == (n, K) and np.isfinite(result["scores"]).all()
    # the flip test is switched on for a trained checkpoint from the command line
    flipped = main(["validate", *common, f"--ckpt_path={ckpt}", "--model.init_args.flip_test=true"])
    assert flipped.model.flip_test is True
    assert "val/pdj@0.2" in flipped.trainer.callback_metrics
