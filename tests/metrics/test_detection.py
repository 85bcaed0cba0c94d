"""WindowAveragePrecision: known-answer AP, weight-0 classes not counted, classes without a
positive window left out."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from lightning_pose.metrics.detection import WindowAveragePrecision


def test_known_answer_ap_per_class_and_mean() -> None:
    # Class "a", 4 windows (one image, 2 x 2 grid) ranked 0.9+, 0.8-, 0.7+, 0.1-:
    # AP = (1/1 + 2/3) / 2 = 5/6. Class "b" ranks its one positive first: AP 1.
    probabilities = torch.tensor([[[[0.9, 0.8], [0.7, 0.1]], [[0.6, 0.2], [0.3, 0.4]]]])
    labels = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]])
    metric = WindowAveragePrecision(["a", "b"])
    metric.update(probabilities, labels, torch.ones(1, 2))
    out = metric.compute()
    assert set(out) == {"ap", "ap/a", "ap/b", "positives"}
    assert_close(out["ap/a"], torch.tensor(5 / 6), rtol=0, atol=1e-6)
    assert_close(out["ap/b"], torch.tensor(1.0), rtol=0, atol=1e-6)
    assert_close(out["ap"], torch.tensor((5 / 6 + 1) / 2), rtol=0, atol=1e-6)
    assert_close(out["positives"], torch.tensor(3.0), rtol=0, atol=0)

    # A second image: class "a" has weight 0 there, with a confident false positive that must
    # not count; class "b" has no positive window there.
    metric.update(
        torch.tensor([[[[0.99, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.05]]]]),
        torch.zeros(1, 2, 2, 2),
        torch.tensor([[0.0, 1.0]]),
    )
    out = metric.compute()
    assert_close(out["ap/a"], torch.tensor(5 / 6), rtol=0, atol=1e-6)
    assert_close(out["ap/b"], torch.tensor(1.0), rtol=0, atol=1e-6)


def test_class_without_a_positive_window_is_left_out() -> None:
    metric = WindowAveragePrecision(["a", "b"])
    labels = torch.zeros(2, 2, 3, 3)
    labels[:, 0, 1, 1] = 1.0  # only class "a" has positives
    metric.update(
        torch.rand(2, 2, 3, 3, generator=torch.Generator().manual_seed(0)), labels, torch.ones(2, 2)
    )
    out = metric.compute()
    assert "ap/b" not in out and set(out) == {"ap", "ap/a", "positives"}
    assert_close(out["ap"], out["ap/a"], rtol=0, atol=0)
