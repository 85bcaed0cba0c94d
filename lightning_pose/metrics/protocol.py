"""The evaluation protocol, configured once for every model: which thresholds PDJ, PCKh, PCP and
bbox-PCK report, the PDJ curve's grid and any further metric; and the metrics of one stage built
from it, a ``torchmetrics.MetricCollection`` of declared metrics
(:mod:`lightning_pose.metrics.declaration`).

In the CLI it is the top-level ``evaluation:`` group, linked to ``model.init_args.evaluation``
(``lightning_pose.cli``), so no model signature or model YAML repeats a threshold.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np
from torch import Tensor, nn
from torchmetrics import MetricCollection, SumMetric

from lightning_pose.data.dataset import Batch
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.declaration import MetricDeclaration, StageMetric
from lightning_pose.metrics.pck import PDJ
from lightning_pose.metrics.wrappers import (
    StageBboxPCK,
    StageOKS,
    StagePCKh,
    StagePCP,
    StagePDJ,
)

# The metrics every protocol reports, in report order; ``extra_metrics`` follow them.
BUILT_IN: tuple[type[StageMetric], ...] = (StagePDJ, StagePCKh, StagePCP, StageBboxPCK, StageOKS)


class EvaluationProtocol:
    """Thresholds of the reported metrics.

    Args:
        pdj_thresholds: PDJ thresholds, fractions of the torso diameter (DeepPose §5).
        pckh_thresholds: PCKh thresholds, fractions of the head segment (Andriluka et al.
            2014; MPII reports 0.5).
        pcp_thresholds: PCP thresholds, fractions of the true limb length (DeepPose Table 1
            uses 0.5).
        curve_max, curve_points: the PDJ-versus-distance curve (DeepPose Fig. 5) is sampled at
            ``curve_points`` thresholds evenly spaced in [0, curve_max].
        pck_bbox_thresholds: bbox-PCK thresholds, fractions of ``max(w, h)`` of the annotated
            person box (mmpose's ``PCKAccuracy(norm_item="bbox")``; mmpose reports 0.05 on
            animal datasets, 0.2 is common too); reported where the dataset has person boxes.
        extra_metrics: further metrics, each the import path of a
            :class:`~lightning_pose.metrics.declaration.StageMetric` subclass (built as
            ``cls(skeleton, protocol)``), e.g. ``lightning_pose.metrics.MeanJointError``;
            reported after the built-in ones, in this order.

    Raises:
        ValueError: an empty threshold list, fewer than 2 curve points, or an extra metric
            that does not import as a ``StageMetric`` or whose name another metric has.
    """

    def __init__(
        self,
        pdj_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        pckh_thresholds: Sequence[float] = (0.5,),
        pcp_thresholds: Sequence[float] = (0.5,),
        curve_max: float = 0.5,
        curve_points: int = 51,
        pck_bbox_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        extra_metrics: Sequence[str] = (),
    ) -> None:
        for name, values in (
            ("pdj_thresholds", pdj_thresholds),
            ("pckh_thresholds", pckh_thresholds),
            ("pcp_thresholds", pcp_thresholds),
            ("pck_bbox_thresholds", pck_bbox_thresholds),
        ):
            if len(values) == 0:
                raise ValueError(f"evaluation.{name} must list at least one threshold")
        if curve_points < 2 or curve_max <= 0:
            raise ValueError(
                "evaluation.curve_points must be >= 2 and evaluation.curve_max > 0, got "
                f"{curve_points} and {curve_max}"
            )
        self.pdj_thresholds = tuple(float(t) for t in pdj_thresholds)
        self.pckh_thresholds = tuple(float(t) for t in pckh_thresholds)
        self.pcp_thresholds = tuple(float(t) for t in pcp_thresholds)
        self.curve_max = float(curve_max)
        self.curve_points = int(curve_points)
        self.pck_bbox_thresholds = tuple(float(t) for t in pck_bbox_thresholds)
        self.extra_metrics = tuple(str(path) for path in extra_metrics)
        self.metric_classes = BUILT_IN + tuple(_import_metric(p) for p in self.extra_metrics)
        names = [cls.declare(self).name for cls in self.metric_classes]
        if len(set(names)) != len(names):
            raise ValueError(f"evaluation.extra_metrics: metric names must be unique, got {names}")

    def declarations(self, skeleton: Skeleton | None = None) -> list[MetricDeclaration]:
        """The declarations of the metrics reported (for ``skeleton``: those that apply to
        it; None: all), in report order."""
        return [
            cls.declare(self)
            for cls in self.metric_classes
            if skeleton is None or cls.applies_to(skeleton)
        ]

    @property
    def curve_thresholds(self) -> tuple[float, ...]:
        grid = np.linspace(0.0, self.curve_max, self.curve_points)
        return tuple(np.round(grid, 6).tolist())

    def to_dict(self) -> dict[str, list[float] | list[str] | float | int]:
        """Plain types (for hyperparameters and checkpoints)."""
        return {
            "pdj_thresholds": list(self.pdj_thresholds),
            "pckh_thresholds": list(self.pckh_thresholds),
            "pcp_thresholds": list(self.pcp_thresholds),
            "curve_max": self.curve_max,
            "curve_points": self.curve_points,
            "pck_bbox_thresholds": list(self.pck_bbox_thresholds),
            "extra_metrics": list(self.extra_metrics),
        }


def earlier_stage_prefix(stage: int) -> str:
    """The prefix of an earlier (not the final) stage's per-image keys where a model records
    every stage's (``PoseEstimator.per_image_scores``, ``callbacks.PerImageScoresWriter``):
    ``stage1/pdj@0.2``; the final stage's keys have none."""
    return f"stage{stage}/"


class StageMetrics(nn.Module):
    """The declared metrics of one stage's estimates (a ``MetricCollection``: PDJ, PCKh, PCP,
    bbox-PCK, OKS AP and the protocol's ``extra_metrics``), the PDJ curve and the instance and
    image counts, in original-image pixels.

    Counted: labelled joints (occluded ones included) of samples whose normaliser can be
    measured (PDJ: both torso joints labelled; PCKh: a head size; bbox-PCK: a person box);
    for PCP, limbs whose end joints are all labelled. A metric that counted nothing is absent
    from :meth:`compute` (PDJ on a skeleton without a torso, PCKh without a head, bbox-PCK
    without person boxes). A metric that does not apply to the skeleton (PCP without limbs,
    OKS AP without ``oks_sigmas``) is not built: its keys are absent and its count is 0. OKS
    AP (:class:`~lightning_pose.metrics.oks.OKSAveragePrecision`) is over the instances with
    an ``area_px2``.

    Shapes:
        update: pred_px (B, K, 2) pixels; batch with ``keypoints_px (B, K, 2)``,
        ``labelled (B, K)``, ``torso_diameter_px (B,)``, ``head_size_px (B,)`` and, where
        present, ``bbox_size_px (B,)`` (bbox-PCK), ``visible (B, K)``, ``area_px2 (B,)``,
        ``image_id (B,)``, ``index (B,)`` (OKS AP) and ``first_of_image (B,)`` bool (the
        distinct images; ``PoseDataset`` gives it; without it each instance counts as its
        own image).
    """

    def __init__(self, skeleton: Skeleton, protocol: EvaluationProtocol) -> None:
        super().__init__()
        # every declared metric, built or not (its count is then 0), in report order
        self.declarations = protocol.declarations()
        built = {
            cls.declare(protocol).name: cls(skeleton, protocol)
            for cls in protocol.metric_classes
            if cls.applies_to(skeleton)
        }
        # No two of these metrics share a state, so each is its own compute group: torchmetrics'
        # automatic grouping (compute_groups=True) compares states after the first update and
        # would merge, e.g., PDJ and bbox-PCK with equal thresholds while both are still zero.
        self.metrics = MetricCollection(built, compute_groups=[[name] for name in built])
        self.curve = PDJ(skeleton.joints, protocol.curve_thresholds, groups=None, prefix="curve")
        self.instances = SumMetric()  # people (one sample each)
        self.images = SumMetric()  # distinct images: each image's first instance

    def __getitem__(self, name: str) -> StageMetric:
        """The metric of the declared ``name`` (``"pdj"``); KeyError where not built."""
        return self.metrics[name]

    def update(self, pred_px: Tensor, batch: Batch) -> None:
        instances = float(batch["labelled"].shape[0])
        self.instances.update(instances)
        first = batch.get("first_of_image")
        self.images.update(instances if first is None else float(first.sum()))
        self.metrics.update(pred_px, batch)
        self.curve.update(pred_px, batch)

    def compute(self, groups: bool = True) -> dict[str, Tensor]:
        """Every declared metric's pooled keys (``pdj@t``, ``pckh@t``, ``pcp@t``,
        ``pck_bbox@t``, ``oks_ap``, ...) and with ``groups`` also the per-group keys
        (``pdj@0.2/wrist``, ``pcp@0.5/upper_arm``). A collective under DDP: call it on every
        process."""
        out: dict[str, Tensor] = {}
        for declaration in self.declarations:
            if declaration.name not in self.metrics:
                continue
            values = self.metrics[declaration.name].compute()
            if not groups:
                values = {k: v for k, v in values.items() if k in declaration.keys()}
            out |= values
        return out

    def counts(self) -> dict[str, Tensor]:
        """What each metric counted, summed over processes: ``count/instances`` (people,
        one sample each) and ``count/images`` (distinct images; fewer where an image holds
        several people, as in COCO and FLIC) evaluated, each declared metric's
        ``count/<name>`` (``count/pdj`` joints, ``count/pcp`` limbs, ...; 0 for a metric not
        built for this skeleton) and finer counts (``count/pdj/limb_joints``, the joints of
        ``pdj@t/limb_joints``). A collective under DDP."""
        out = {"count/instances": self.instances.compute(), "count/images": self.images.compute()}
        zero = out["count/images"].new_zeros(())
        for declaration in self.declarations:
            if declaration.name in self.metrics:
                out |= self.metrics[declaration.name].counted()
            elif declaration.logs_count:
                out[f"count/{declaration.name}"] = zero
        return out

    def per_image(self, pred_px: Tensor, batch: Batch) -> dict[str, Tensor]:
        """Each image's sums and counts of every metric that has them
        (:meth:`~lightning_pose.metrics.declaration.StageMetric.per_image`): ``{key: (B,)}``
        sums and ``{"count/<name>": (B,)}`` counts, float64. Touches no state (the logged
        values stay fixed-size sums); no collective."""
        out: dict[str, Tensor] = {}
        for declaration in self.declarations:
            if declaration.name not in self.metrics:
                continue
            scored = self.metrics[declaration.name].per_image(pred_px, batch)
            if scored is not None:
                sums, counts = scored
                out |= sums | {f"count/{declaration.name}": counts}
        return out

    def pdj_curve(self) -> Tensor:
        """Pooled PDJ at every curve threshold, (T,) in [0, 1]; a collective under DDP."""
        return self.curve.curve()[1]

    def reset(self) -> None:
        """Reset every metric, the curve and the counts (after logging an epoch)."""
        self.metrics.reset()
        self.curve.reset()
        self.instances.reset()
        self.images.reset()


def _import_metric(path: str) -> type[StageMetric]:
    """The ``StageMetric`` subclass at the import path ``module.Class``.

    Raises:
        ValueError: the path does not import, or names something else.
    """
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as error:
        raise ValueError(f"evaluation.extra_metrics: cannot import {path!r}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, StageMetric)):
        raise ValueError(
            f"evaluation.extra_metrics: {path!r} must name a subclass of "
            "lightning_pose.metrics.declaration.StageMetric (module.Class)"
        )
    return cls
