"""What a metric of one stage declares about itself, and the interface every such metric has.

A :class:`StageMetric` is a torchmetrics ``Metric`` built from the skeleton and the
:class:`~lightning_pose.metrics.protocol.EvaluationProtocol`, updated with one stage's
predictions in original-image pixels and the batch. Its :class:`MetricDeclaration` says what it
is called, which direction is better, its thresholds, its unit, what it counts and over which
groups it reports. The reports (``callbacks.metrics_table``, ``callbacks.wandb_panels``,
``reports.tables``) read declarations; they never take a result key apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from torch import Tensor
from torchmetrics import Metric

from lightning_pose.data.dataset import Batch

if TYPE_CHECKING:
    from lightning_pose.data.skeleton import Skeleton
    from lightning_pose.metrics.protocol import EvaluationProtocol


@dataclass(frozen=True)
class MetricDeclaration:
    """A metric's name, direction, thresholds and what it counts.

    Attributes:
        name: the key stem: ``f"{name}@{t:g}"`` per threshold, or ``name`` alone when the
            metric has no threshold; per group ``f"{key}/{group}"``; its count
            ``f"count/{name}"``.
        title: the name in prose (``"PDJ"``).
        higher_is_better: True for fractions correct and AP, False for errors.
        thresholds: the thresholds of the keys, in the unit of the normaliser; () for none.
        unit: ``"fraction"`` (in [0, 1], tables show percent) or ``"px"`` (original-image
            pixels, tables show pixels).
        counts: what one count is, with its condition, for the report's "Counted" line
            (``"labelled joints (images with both torso joints labelled)"``); None: not
            listed there.
        logs_count: whether ``count/<name>`` is logged (0 where the metric does not apply to
            the skeleton).
        groups: ``"joint"`` (per joint group keys, :meth:`Skeleton.groups`), ``"limb"`` (per
            limb group, :meth:`Skeleton.limb_groups`) or None (pooled keys only).
        extra_keys: keys without a threshold besides ``name`` (OKS AP: ``oks_ap50``, ...); the
            first pooled key of a metric without thresholds is ``name``.
    """

    name: str
    title: str
    higher_is_better: bool
    thresholds: tuple[float, ...] = ()
    unit: Literal["fraction", "px"] = "fraction"
    counts: str | None = None
    logs_count: bool = True
    groups: Literal["joint", "limb"] | None = None
    extra_keys: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        """The pooled keys (no group, no split or stage prefix), in report order."""
        if self.thresholds:
            return tuple(f"{self.name}@{t:g}" for t in self.thresholds) + self.extra_keys
        return (self.name, *self.extra_keys)

    def group_keys(self, groups: list[str]) -> tuple[str, ...]:
        """The per-group keys for ``groups`` (empty when the metric has no groups)."""
        if self.groups is None:
            return ()
        return tuple(f"{key}/{group}" for key in self.keys() for group in groups)

    def better(self, value: float, than: float) -> bool:
        """Whether ``value`` is strictly better than ``than`` in this metric's direction."""
        return value > than if self.higher_is_better else value < than

    def to_dict(self) -> dict:
        """Plain types (JSON: ``metric_declarations.json`` beside the metrics tables)."""
        out = asdict(self)
        out["thresholds"] = list(self.thresholds)
        out["extra_keys"] = list(self.extra_keys)
        return out

    @classmethod
    def from_dict(cls, record: dict) -> MetricDeclaration:
        """The inverse of :meth:`to_dict`."""
        record = dict(record)
        record["thresholds"] = tuple(float(t) for t in record.get("thresholds", ()))
        record["extra_keys"] = tuple(record.get("extra_keys", ()))
        return cls(**record)


# The file a run's MetricsTableWriter records its declarations in, beside its tables
# (lightning_pose.reports.tables.read_declarations reads it).
DECLARATIONS_FILE = "metric_declarations.json"


def find_declaration(
    key: str, declarations: list[MetricDeclaration], prefixes: list[str]
) -> MetricDeclaration | None:
    """The declaration one of whose pooled keys, under one of ``prefixes`` (``"val/"``,
    ``"val/stage1/"``), is ``key`` or whose per-group keys start with it; None when no
    declaration makes ``key``."""
    for declaration in declarations:
        for prefix in prefixes:
            for own in declaration.keys():
                if key == prefix + own or key.startswith(f"{prefix}{own}/"):
                    return declaration
    return None


class StageMetric(Metric):
    """A metric of one stage's estimates: built from the skeleton and the protocol, updated
    with the predictions and the batch, so that a :class:`~torchmetrics.MetricCollection`
    updates every one with the same call.

    A subclass sets :meth:`declare` and implements ``update(pred_px, batch)`` (the interface of
    every metric class of :mod:`lightning_pose.metrics`), ``compute()``
    (a dict keyed as its declaration says; a key whose metric counted nothing is left out)
    and :meth:`counted`. Its states are fixed-size sums (``dist_reduce_fx="sum"``) wherever
    the metric is a sum over images (OKS AP, a ranking, is the exception).

    Shapes:
        update: pred_px (B, K, 2) original-image pixels; batch as
            :class:`~lightning_pose.metrics.protocol.StageMetrics` documents.
    """

    is_differentiable = False
    full_state_update = False
    declaration: MetricDeclaration

    @classmethod
    def declare(cls, protocol: EvaluationProtocol) -> MetricDeclaration:
        """The declaration under ``protocol`` (its thresholds), without building the metric."""
        raise NotImplementedError

    @classmethod
    def applies_to(cls, skeleton: Skeleton) -> bool:
        """Whether the metric can be built for ``skeleton`` (PCP needs limbs); where not, its
        count is logged as 0 and its keys are absent."""
        return True

    def counted(self) -> dict[str, Tensor]:
        """What the metric counted, summed over processes: ``{"count/<name>": ()}`` and any
        finer counts; {} when its count is not logged. A collective under DDP."""
        return {}

    def per_image(self, pred_px: Tensor, batch: Batch) -> tuple[dict[str, Tensor], Tensor] | None:
        """Each image's share of the pooled values, for resampling images (a bootstrap): per
        pooled key the image's sum (hits, or pixels of error) and the image's count, so that
        the pooled value is ``sum over images of sums / sum over images of counts``. Touches
        no state. None where the metric is no sum over images (OKS AP ranks them all).

        Shapes:
            pred_px (B, K, 2) pixels; returns ``{key: (B,)}`` float64 and ``counts (B,)``.
        """
        return None
