"""Average precision of sliding-window detectors (Li, Liu & Chan 2014 §3: the joint-point and
body-part detection tasks), per joint or part.

Each joint (part) has one binary classifier per window; its AP ranks all windows of all counted
images by the classifier's probability against the window labels of
:class:`~lightning_pose.codecs.windows.WindowCodec`. The state is torchmetrics' binned
precision-recall confusion matrix ``(T, L, 2, 2)`` at T fixed probability thresholds: fixed size,
reduced across processes with ``sum``, so the result under DDP equals the single-process one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.classification import MultilabelAveragePrecision

_IGNORE = -1  # target of windows of a joint with weight 0


class WindowAveragePrecision(MultilabelAveragePrecision):
    """Per-class AP of window classifiers over every window of every counted image.

    Args:
        names: the L joints or parts, in the order of the classifiers.
        thresholds: T probability thresholds in [0, 1] of the binned precision-recall curve.

    Shapes:
        update: probabilities (B, L, G_y, G_x) in [0, 1]; labels (B, L, G_y, G_x) in {0, 1};
        weight (B, L), a class of weight 0 is not counted in that image.
        compute(): ``{"ap": mean over classes with a positive window, "ap/<name>": ...,
        "positives": number of positive windows}``; classes with no positive window are left
        out (their AP is undefined).
    """

    def __init__(self, names: Sequence[str], thresholds: int = 101) -> None:
        super().__init__(
            num_labels=len(names), average=None, thresholds=thresholds, ignore_index=_IGNORE
        )
        self.names = tuple(names)

    def update(self, probabilities: Tensor, labels: Tensor, weight: Tensor) -> None:
        """Add one batch; see the class docstring for shapes."""
        if probabilities.shape != labels.shape or weight.shape != probabilities.shape[:2]:
            raise ValueError(
                f"WindowAveragePrecision: probabilities {tuple(probabilities.shape)} and labels "
                f"{tuple(labels.shape)} must be (B, L, G_y, G_x) and weight (B, L), got "
                f"{tuple(weight.shape)}"
            )
        counted = (weight > 0)[..., None, None].expand_as(labels)  # (B, L, G_y, G_x)
        target = torch.where(counted, labels.long(), torch.full_like(labels, _IGNORE).long())
        super().update(probabilities.detach(), target)

    def compute(self) -> dict[str, Tensor]:
        ap = super().compute()  # (L,), 0 where a class has no positive
        positives = self.confmat[0, :, 1, :].sum(dim=-1)  # (L,) fn + tp at any threshold
        has_positive = positives > 0
        out = {f"ap/{name}": ap[i] for i, name in enumerate(self.names) if has_positive[i]}
        if has_positive.any():
            out["ap"] = ap[has_positive].mean()
        out["positives"] = positives.sum().to(torch.float32)
        return out
