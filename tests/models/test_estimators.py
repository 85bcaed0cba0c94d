"""Every PoseEstimator subclass (timm-style): forward, backward (every trainable parameter
gets a finite gradient), validation through the real Trainer (every stage logged) and predict;
and every family on every real trunk that can serve it.

A new subclass without an entry in VARIANTS fails ``test_every_subclass_is_covered``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_pose.codecs.box import decode
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.metrics.functional import pckh, pcp, pdj
from lightning_pose.models import (
    AlexNetTrunk,
    DeepPose,
    DeepPoseCascade,
    EfficientNetLite0Trunk,
    HeatmapHead,
    HeatmapPose,
    MultiResolutionTrunk,
    MultiTaskPose,
    PoseEstimator,
    ResNetTrunk,
    SimCCPose,
    Trunk,
)
from lightning_pose.models.losses import coordinate_l2_loss
from tests.models.test_deeppose import ListDataset, TinyTrunk, make_batch, quiet_trainer


def _cascade(stages: int) -> Callable[[], PoseEstimator]:
    def make() -> PoseEstimator:
        model = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=stages, samples_per_image=4)
        model.error_cov.copy_(0.01 * torch.eye(2).expand_as(model.error_cov))
        return model

    return make


def _heatmap(phase: str, flip_test: bool = False) -> Callable[[], PoseEstimator]:
    def make() -> PoseEstimator:
        trunk = MultiResolutionTrunk(channels=4, out_channels=8)
        # a window twice the image: every joint is inside it, so the fine loss reaches every
        # refinement parameter whatever the untrained coarse estimate
        return HeatmapPose(
            trunk, LSP_SKELETON, training_phase=phase, window_size=64, flip_test=flip_test
        )

    return make


VARIANTS: dict[str, tuple[type, Callable[[], PoseEstimator]]] = {
    "deeppose": (DeepPose, lambda: DeepPose(TinyTrunk(), LSP_SKELETON)),
    "cascade-1": (DeepPoseCascade, _cascade(1)),
    "cascade-2": (DeepPoseCascade, _cascade(2)),
    "cascade-3": (DeepPoseCascade, _cascade(3)),
    "multitask": (
        MultiTaskPose,
        lambda: MultiTaskPose(TinyTrunk(), LSP_SKELETON, window_grid=(4, 4)),
    ),
    "multitask-detection-pretrain": (
        MultiTaskPose,
        lambda: MultiTaskPose(TinyTrunk(), LSP_SKELETON, window_grid=(4, 4), regression_weight=0.0),
    ),
    "heatmap-coarse": (HeatmapPose, _heatmap("coarse")),
    "heatmap-fine": (HeatmapPose, _heatmap("fine")),
    "heatmap-joint": (HeatmapPose, _heatmap("joint")),
    "heatmap-joint-flip": (HeatmapPose, _heatmap("joint", flip_test=True)),
    "cascade-2-flip": (DeepPoseCascade, lambda: _with_flip_test(_cascade(2)())),
    "multitask-flip": (MultiTaskPose, lambda: _with_flip_test(VARIANTS["multitask"][1]())),
    "simcc": (SimCCPose, lambda: SimCCPose(TinyTrunk(), LSP_SKELETON, num_bins=(64, 48))),
    "simcc-flip": (SimCCPose, lambda: _with_flip_test(SimCCPose(TinyTrunk(), LSP_SKELETON))),
}


def _with_flip_test(model: PoseEstimator) -> PoseEstimator:
    model.flip_test = True
    return model


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def test_every_subclass_is_covered() -> None:
    package = {c for c in _subclasses(PoseEstimator) if c.__module__.startswith("lightning_pose")}
    assert package == {cls for cls, _ in VARIANTS.values()}


def batch_with_highres(seed: int = 0) -> dict[str, torch.Tensor]:
    batch = make_batch(batch_size=2, size=32, seed=seed)
    batch["image_hr"] = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    return batch


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_and_every_trainable_parameter_gets_a_gradient(variant: str) -> None:
    torch.manual_seed(0)
    model = VARIANTS[variant][1]().train()
    batch = batch_with_highres()
    stages = model.estimate(batch)["stages"]
    assert len(stages) == model.num_stages
    for estimate in stages:
        assert estimate.shape == (2, LSP_SKELETON.num_joints, 2) and torch.isfinite(estimate).all()
    loss = model.training_step(batch, 0)
    assert loss.shape == () and torch.isfinite(loss) and loss > 0
    loss.backward()
    trainable = dict(model.named_parameters())
    optimised = {id(p) for p in model.trainable_parameters()}
    for name, param in trainable.items():
        if id(param) not in optimised:
            assert param.grad is None and not param.requires_grad, f"frozen {name} changed"
            continue
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_validation_logs_every_stage_and_predict_returns_pixels(variant: str) -> None:
    torch.manual_seed(0)
    model = VARIANTS[variant][1]()
    samples = [
        {k: v[i] for k, v in batch_with_highres(seed).items()}
        for seed in range(2)
        for i in range(2)
    ]
    loader = DataLoader(ListDataset(samples), batch_size=3)
    trainer = quiet_trainer()
    (logged,) = trainer.validate(model, dataloaders=loader, verbose=False)
    # the logged values are those of the model's own final estimate on the 4 samples
    batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    with torch.no_grad():
        final = model.eval().estimate_float32(batch)["stages"][-1]  # (4, K, 2)
    pred_px = decode(final, batch["box"])  # (4, K, 2) original pixels
    target_px, labelled = batch["keypoints_px"], batch["labelled"]
    wrists = [LSP_SKELETON.joints.index(n) for n in ("right_wrist", "left_wrist")]
    expected = {
        "val/loss": coordinate_l2_loss(final, batch["keypoints_norm"], labelled),
        "val/pdj@0.2": pdj(pred_px, target_px, labelled, batch["torso_diameter_px"], (0.2,))[0],
        "val/pckh@0.5": pckh(pred_px, target_px, labelled, batch["head_size_px"], (0.5,))[0],
        "val/pcp@0.5": pcp(pred_px, target_px, labelled, LSP_SKELETON.limb_endpoint_weights())[0],
        "val/pdj@0.2/wrist": pdj(pred_px[:, wrists], target_px[:, wrists], labelled[:, wrists],
                                 batch["torso_diameter_px"], (0.2,))[0],
    }  # fmt: skip
    for key, value in expected.items():
        torch.testing.assert_close(
            torch.tensor(logged[key]), value.float(), rtol=0, atol=1e-6, msg=key
        )
    stage_keys = {k for k in logged if "/stage" in k}
    if model.num_stages == 1:
        assert stage_keys == set()
    else:
        expected = {
            f"val/stage{s}/{m}"
            for s in range(1, model.num_stages + 1)
            for m in ("pdj@0.05", "pdj@0.1", "pdj@0.2", "pckh@0.5", "pcp@0.5")
        }
        assert stage_keys == expected
        last = f"val/stage{model.num_stages}/pdj@0.2"
        assert logged[last] == pytest.approx(logged["val/pdj@0.2"], abs=1e-9)
    assert sorted(model.pdj_curves["val"]) == list(range(1, model.num_stages + 1))

    (predictions,) = [trainer.predict(model, dataloaders=loader)]
    keypoints = torch.cat([p["keypoints_px"] for p in predictions])
    index = torch.cat([p["index"] for p in predictions])
    assert keypoints.shape == (4, LSP_SKELETON.num_joints, 2) and torch.isfinite(keypoints).all()
    assert index.tolist() == [0, 1, 0, 1]


# --- every family on every real trunk that can serve it -----------------------------------
REAL_TRUNKS: dict[str, Callable[[], Trunk]] = {
    "alexnet": lambda: AlexNetTrunk(input_size=64),
    "resnet18": lambda: ResNetTrunk(18),
    "efficientnet_lite0": lambda: EfficientNetLite0Trunk(pretrained=False),
    "efficientnet_lite0_pyramid": lambda: EfficientNetLite0Trunk(
        pretrained=False, pyramid_only=True
    ),
    "multiresolution": lambda: MultiResolutionTrunk(channels=4, out_channels=8),
}
FAMILIES: dict[str, Callable[[Trunk], PoseEstimator]] = {
    "deeppose": lambda trunk: DeepPose(trunk, LSP_SKELETON),
    "cascade-2": lambda trunk: DeepPoseCascade(
        trunk, LSP_SKELETON, num_stages=2, samples_per_image=2
    ),
    "multitask": lambda trunk: MultiTaskPose(trunk, LSP_SKELETON, window_grid=(2, 2)),
    "simcc": lambda trunk: SimCCPose(trunk, LSP_SKELETON, num_bins=(128, 128)),
    # every pyramid level (the coarsest too: its blocks would get no gradient otherwise), and a
    # window twice the image, so the fine loss reaches the whole refinement
    "heatmap": lambda trunk: HeatmapPose(
        trunk, LSP_SKELETON, head=partial(HeatmapHead, levels=4), window_size=128
    ),
}


def _refusal(family: str, trunk: Trunk) -> str | None:
    """Why ``family`` cannot use ``trunk`` (what its error says), or None."""
    if family != "heatmap":
        return None
    if not trunk.pyramid_strides:
        return f"{type(trunk).__name__} has no feature pyramid"
    if trunk.layers_after_pyramid:
        return "runs layers after its last pyramid level.*pyramid_only: true"
    return None


@pytest.mark.parametrize("trunk_name", list(REAL_TRUNKS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_trains_on_every_real_trunk(family: str, trunk_name: str) -> None:
    """Forward (every stage finite), backward (every trainable parameter, trunk included, gets
    a finite non-zero gradient), at 64 px so that it stays fast; a family that cannot use the
    trunk refuses it, naming it."""
    torch.manual_seed(0)
    trunk = REAL_TRUNKS[trunk_name]()
    refusal = _refusal(family, trunk)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            FAMILIES[family](trunk)
        return
    model = FAMILIES[family](trunk).train()
    if isinstance(model, DeepPoseCascade):
        model.error_cov.copy_(0.01 * torch.eye(2).expand_as(model.error_cov))
    batch = make_batch(batch_size=2, size=64)
    batch["image_hr"] = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    loss = model.training_step(batch, 0)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith(("trunk.", "stages.")) for n, _ in trainable)
    for name, param in trainable:
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name
    with torch.no_grad():
        stages = model.eval().estimate(batch)["stages"]
    assert len(stages) == model.num_stages
    assert all(
        s.shape == (2, LSP_SKELETON.num_joints, 2) and torch.isfinite(s).all() for s in stages
    )
