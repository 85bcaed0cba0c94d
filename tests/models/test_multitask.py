"""MultiTaskPose (Li, Liu & Chan 2014): task switches, known-answer detection loss, visibility,
detection metrics, loading only the shared trunk, and fit -> predict through the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import binary_average_precision

from lightning_pose.callbacks.checkpoint import best_and_last
from lightning_pose.cli import main
from lightning_pose.codecs.box import decode
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.metrics.functional import pdj
from lightning_pose.models import DeepPose, MultiTaskPose
from lightning_pose.models.base import mirror_keypoints
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.multitask import limb_flip_permutation
from tests.cli.test_lightning import FAST
from tests.conftest import write_image
from tests.models.test_deeppose import ListDataset, TinyTrunk, make_batch, quiet_trainer

K, L = LSP_SKELETON.num_joints, len(LSP_SKELETON.limbs)
REPO = Path(__file__).resolve().parents[2]


def model(regression: float = 1.0, joint: float = 1.0, part: float = 1.0) -> MultiTaskPose:
    return MultiTaskPose(
        TinyTrunk(),
        LSP_SKELETON,
        window_grid=(4, 4),
        regression_weight=regression,
        joint_detection_weight=joint,
        part_detection_weight=part,
    )


SETTINGS = {
    "regression only": ((1.0, 0.0, 0.0), {"regression"}),
    "+ joint detection": ((1.0, 0.5, 0.0), {"regression", "joint_det"}),
    "+ both": ((1.0, 0.5, 0.25), {"regression", "joint_det", "part_det"}),
    "detection pre-training": ((0.0, 0.5, 0.25), {"joint_det", "part_det"}),
}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_switching_a_task_off_removes_its_loss_term_and_gradients(setting: str) -> None:
    (regression, joint, part), tasks = SETTINGS[setting]
    torch.manual_seed(0)
    net = model(regression, joint, part).train()
    batch = make_batch(size=32)
    losses = net.losses(batch)
    assert set(losses) == tasks
    weights = {"regression": regression, "joint_det": joint, "part_det": part}
    expected = sum(weights[t] * losses[t] for t in tasks)
    loss = net.training_step(batch, 0)  # TinyTrunk and the heads have no dropout: same terms
    assert_close(loss, expected, rtol=1e-6, atol=0)
    assert (net.joint_detector is not None) == (joint > 0)
    assert (net.part_detector is not None) == (part > 0)
    loss.backward()
    optimised = {id(p) for p in net.trainable_parameters()}
    for name, param in net.named_parameters():
        in_regression_head = name.startswith("head.")
        if in_regression_head and regression == 0:
            assert id(param) not in optimised and param.grad is None, name
        else:
            assert id(param) in optimised and param.grad.abs().sum() > 0, name


def test_regression_only_is_deeppose_stage_1() -> None:
    torch.manual_seed(0)
    net = model(1.0, 0.0, 0.0)
    batch = make_batch(size=32)
    prediction = net.estimate(batch)
    assert set(prediction) == {"stages"}  # no detector, no scores
    expected = coordinate_l2_loss(
        prediction["stages"][0], batch["keypoints_norm"], batch["labelled"]
    )
    assert_close(net.training_step(batch, 0), expected, rtol=0, atol=0)


def constant_detectors(net: MultiTaskPose, logit: float) -> None:
    """Both detectors output ``logit`` in every window, whatever the image."""
    with torch.no_grad():
        for detector in (net.joint_detector, net.part_detector):
            detector.classifier.weight.zero_()
            detector.classifier.bias.fill_(logit)


def test_detection_loss_known_answer_and_invisible_joints_add_nothing() -> None:
    # Every window scores logit b. A visible joint has 1 positive window of 16, so its BCE is
    # (softplus(-b) + 15 softplus(b)) / 16, whatever its window: the mean over visible joints.
    net = model(1.0, 1.0, 1.0)
    b = 0.7
    constant_detectors(net, b)
    batch = make_batch(size=32, seed=3)
    softplus = torch.nn.functional.softplus
    per_window = (softplus(torch.tensor(-b)) + 15 * softplus(torch.tensor(b))) / 16
    losses = net.losses(batch)
    assert batch["visible"].any()
    assert_close(losses["joint_det"], per_window, rtol=1e-6, atol=0)
    assert_close(losses["part_det"], per_window, rtol=1e-6, atol=0)

    batch["visible"] = torch.zeros_like(batch["visible"])  # every joint hidden
    net.zero_grad()
    losses = net.losses(batch)
    assert_close(losses["joint_det"], torch.tensor(0.0), rtol=0, atol=0)
    assert_close(losses["part_det"], torch.tensor(0.0), rtol=0, atol=0)
    labels = net.window_labels(batch)
    assert labels["joint_det"][0].sum() == 0 and labels["part_det"][0].sum() == 0
    (losses["joint_det"] + losses["part_det"]).backward()
    for detector in (net.joint_detector, net.part_detector):
        for param in detector.parameters():
            assert param.grad is None or param.grad.abs().sum() == 0


def test_estimate_scores_are_the_best_window_of_each_joint() -> None:
    torch.manual_seed(0)
    net = model().eval()
    batch = make_batch(size=32)
    with torch.no_grad():
        prediction = net.estimate(batch)
        out = net.predict_step(batch, 0)
    windows = prediction["joint_window_scores"]
    assert windows.shape == (2, K, 4, 4) and ((windows > 0) & (windows < 1)).all()
    assert_close(prediction["scores"], windows.flatten(2).amax(-1), rtol=0, atol=0)
    assert prediction["part_window_scores"].shape == (2, L, 4, 4)
    assert set(out) == {
        "index",
        "keypoints_px",
        "boxes_px",
        "scores",
        "joint_window_scores",
        "part_window_scores",
    }
    assert_close(out["joint_window_scores"], windows, rtol=0, atol=0)


def test_limb_flip_permutation_of_lsp_swaps_left_and_right_limbs() -> None:
    names = LSP_SKELETON.limb_names
    permutation = limb_flip_permutation(LSP_SKELETON)
    for i, name in enumerate(names):
        mirrored = names[permutation[i]]
        if name.startswith("left_"):
            assert mirrored == "right_" + name[len("left_") :]
        elif name.startswith("right_"):
            assert mirrored == "left_" + name[len("right_") :]
        else:
            assert mirrored == name
    assert permutation != list(range(L))


def test_flip_test_mirrors_window_scores_as_the_codec_labels_mirrored_joints() -> None:
    """Known answer from the codec: the windows of the mirrored joints (and part centres) are
    the mirror_estimate of the windows of the joints."""
    net = model()
    batch = make_batch(size=32)
    batch["keypoints_norm"] = batch["keypoints_norm"] * 0.9  # clear of the box edge
    mirrored = dict(
        batch,
        keypoints_norm=mirror_keypoints(batch["keypoints_norm"], LSP_SKELETON.flip_permutation()),
    )
    mirrored["visible"] = batch["visible"][:, LSP_SKELETON.flip_permutation()]
    labels = {task: label for task, (label, _) in net.window_labels(batch).items()}
    labels_of_mirror = {task: label for task, (label, _) in net.window_labels(mirrored).items()}
    estimate = {
        "stages": [batch["keypoints_norm"]],
        "joint_window_scores": labels["joint_det"],
        "part_window_scores": labels["part_det"],
    }
    out = net.mirror_estimate(estimate)
    assert_close(out["joint_window_scores"], labels_of_mirror["joint_det"], rtol=0, atol=0)
    assert_close(out["part_window_scores"], labels_of_mirror["part_det"], rtol=0, atol=0)
    assert labels["joint_det"].flip(-1).ne(labels["joint_det"]).any()  # not trivially symmetric


def test_validation_logs_detection_ap_per_joint_and_part() -> None:
    torch.manual_seed(0)
    net = model()
    samples = [
        {k: v[i] for k, v in make_batch(size=32, seed=s).items()}
        for s in range(2)
        for i in range(2)
    ]
    loader = DataLoader(ListDataset(samples), batch_size=3)
    (logged,) = quiet_trainer().validate(net, dataloaders=loader, verbose=False)
    visible = torch.stack([s["visible"] for s in samples])  # (4, K)
    joints_seen = {LSP_SKELETON.joints[k] for k in range(K) if visible[:, k].any()}
    assert {
        k.removeprefix("val/joint_det/ap/") for k in logged if "joint_det/ap/" in k
    } == joints_seen
    assert logged["val/count/joint_det"] == visible.sum()
    assert any(k.startswith("val/part_det/ap/") for k in logged)
    # The logged values are those of the model's own estimate on the four samples (TinyTrunk
    # has no batch-dependent layer): the loss and PDJ by hand, the AP of each task with
    # torchmetrics' function over the windows of the images that count the joint or part.
    batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}  # B = 4
    with torch.no_grad():
        estimate = net.eval().estimate(batch)
    final = estimate["stages"][-1]  # (4, K, 2)
    expected = {
        "val/loss": coordinate_l2_loss(final, batch["keypoints_norm"], batch["labelled"]),
        "val/pdj@0.2": pdj(decode(final, batch["box"]), batch["keypoints_px"],
                           batch["labelled"], batch["torso_diameter_px"], (0.2,))[0],
    }  # fmt: skip
    for task, (labels, weight) in net.window_labels(batch).items():
        scores = estimate["joint_window_scores" if task == "joint_det" else "part_window_scores"]
        per_class = []
        for c in range(labels.shape[1]):
            counted = weight[:, c] > 0  # (4,) images that count class c
            target = labels[counted, c].flatten().long()
            if target.sum() > 0:  # AP is undefined without a positive window
                per_class.append(
                    binary_average_precision(scores[counted, c].flatten(), target, thresholds=101)
                )
        expected[f"val/{task}/ap"] = torch.stack(per_class).mean()
    for key, value in expected.items():
        assert_close(torch.tensor(logged[key]), value.float(), rtol=0, atol=1e-5, msg=key)


def fake_checkpoint(net: torch.nn.Module, path: Path) -> Path:
    torch.save({"state_dict": net.state_dict()}, path)
    return path


def test_pretraining_loads_the_shared_trunk_and_only_it(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pretrained = model(0.0, 1.0, 1.0)
    ckpt = fake_checkpoint(pretrained, tmp_path / "detection.ckpt")
    torch.manual_seed(1)
    net = model(1.0, 1.0, 0.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_init_checkpoint(str(ckpt))
    source = pretrained.state_dict()
    for key, value in net.state_dict().items():
        if key.startswith("trunk."):
            assert_close(value, source[key], rtol=0, atol=0)
            assert not torch.equal(value, before[key]), key
        else:
            assert_close(value, before[key], rtol=0, atol=0)  # heads untouched


def test_pretraining_also_reads_a_deeppose_trunk_and_names_a_bad_checkpoint(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    deeppose = DeepPose(TinyTrunk(), LSP_SKELETON)
    net = model()
    net.load_init_checkpoint(str(fake_checkpoint(deeppose, tmp_path / "dp.ckpt")))
    assert_close(net.trunk.conv.weight, deeppose.trunk.conv.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="model.init_checkpoint.*no weights under"):
        net.load_init_checkpoint(str(fake_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x.ckpt")))
    with pytest.raises(FileNotFoundError, match="model.init_checkpoint"):
        net.load_init_checkpoint(str(tmp_path / "missing.ckpt"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"regression_weight": 0.0, "joint_detection_weight": 0.0, "part_detection_weight": 0.0},
            "every task is off",
        ),
        ({"joint_detection_weight": -1.0}, "model.joint_detection_weight must be >= 0"),
        ({"window_grid": (4, 0)}, r"model.window_grid: .*grid must be \(G_x, G_y\)"),
    ],
)
def test_bad_settings_raise_naming_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultiTaskPose(TinyTrunk(), LSP_SKELETON, **kwargs)


# --- the CLI: detection pre-training -> regression from its trunk -> predict ----------------
def cli_args(config: str, tiny_root: Path) -> list[str]:
    return [
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        "-c",
        str(REPO / "conf" / "model" / config),
        *FAST,
        f"--data.root={tiny_root}",
        "--data.input_size=64",
        "--model.init_args.trunk=tests.models.test_deeppose.TinyTrunk",  # small checkpoints
        "--model.init_args.window_grid=[2, 2]",
    ]


ONE_STEP = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=1",
    "--trainer.limit_val_batches=1",
]


def test_cli_pretrain_then_fit_from_its_trunk_then_predict(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pretrain = main(["fit", *cli_args("multitask_detection_pretrain.yaml", tiny_root), *ONE_STEP])
    metrics = pretrain.trainer.callback_metrics
    assert "train/loss_regression" not in metrics and math.isfinite(metrics["train/loss_joint_det"])
    assert 0 <= float(metrics["val/joint_det/ap"]) <= 1
    pre_ckpt = best_and_last(pretrain.trainer)[1]

    # lr 0: the fit changes no parameter, so what it ends with is what it loaded.
    fit = main(
        [
            "fit",
            *cli_args("multitask.yaml", tiny_root),
            *ONE_STEP,
            "--seed_everything=1",  # heads initialised unlike the pre-training run's
            f"--model.init_args.init_checkpoint={pre_ckpt}",
            "--model.init_args.optimizer.init_args.lr=0.0",
        ]
    )
    assert {"train/loss_regression", "train/loss_joint_det", "train/loss_part_det"} <= set(
        fit.trainer.callback_metrics
    )
    fit_ckpt = best_and_last(fit.trainer)[1]
    assert pre_ckpt.name == fit_ckpt.name == "last.ckpt" and pre_ckpt != fit_ckpt
    source = torch.load(pre_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    loaded = torch.load(fit_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    trunk = [k for k, v in source.items() if k.startswith("trunk.") and v.is_floating_point()]
    assert trunk and all(torch.equal(loaded[k], source[k]) for k in trunk if "running" not in k)
    heads = [k for k in source if k.startswith(("head.", "joint_detector."))]
    assert heads and not any(
        torch.equal(loaded[k], source[k]) for k in heads if k.endswith("weight")
    )

    folder, out = tmp_path / "unlabelled", tmp_path / "pred"
    for k, (w, h) in enumerate([(50, 30), (31, 77), (64, 64)]):
        write_image(folder / f"frame{k}.png", w, h, seed=k)
    main(
        [
            "predict",
            *cli_args("multitask.yaml", tiny_root),
            f"--data.predict.image_dir={folder}",
            f"--ckpt_path={fit_ckpt}",
            "--trainer.callbacks+=lightning_pose.callbacks.PredictionWriter",
            f"--trainer.callbacks.output_dir={out}",
        ]
    )
    result = np.load(out / "predictions.npz")
    assert list(result["names"]) == ["frame0.png", "frame1.png", "frame2.png"]
    assert result["keypoints_px"].shape == (3, K, 2) and np.isfinite(result["keypoints_px"]).all()
    windows = result["joint_window_scores"]
    assert windows.shape == (3, K, 2, 2) and ((windows > 0) & (windows < 1)).all()
    np.testing.assert_allclose(result["scores"], windows.reshape(3, K, 4).max(-1), rtol=0, atol=0)
    assert result["part_window_scores"].shape == (3, L, 2, 2)
