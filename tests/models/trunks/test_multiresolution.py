"""MultiResolutionTrunk (Tompson et al. 2015, §3, Fig. 3): pyramid strides, pooling kinds,
weight sharing, input checks; LocalContrastNormalisation's invariances."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_pose.models.trunks import LocalContrastNormalisation, MultiResolutionTrunk


@pytest.mark.parametrize("pooling", ["max", "avg", "conv"])
@pytest.mark.parametrize("num_poolings", [2, 3, 4])
def test_multiresolution_pyramid_strides_tile_the_input(pooling: str, num_poolings: int):
    trunk = MultiResolutionTrunk(pooling, num_poolings, channels=4, out_channels=8)
    size = 64 * 2 ** max(0, num_poolings - 2)
    maps = trunk.pyramid(torch.rand(2, 3, size, size))
    s = 2**num_poolings
    assert trunk.stride == s and trunk.pyramid_strides == (s, 2 * s, 4 * s)
    assert [tuple(m.shape) for m in maps] == [
        (2, 8, size // t, size // t) for t in (s, 2 * s, 4 * s)
    ]
    pools = [m for m in trunk.banks[0] if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    strided = [m for m in trunk.banks[0] if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(pools if pooling != "conv" else strided) == num_poolings


def test_multiresolution_weight_sharing_and_bad_input_size():
    shared = MultiResolutionTrunk(channels=4, out_channels=8, share_weights=True)
    separate = MultiResolutionTrunk(channels=4, out_channels=8, share_weights=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert len(shared.banks) == 1 and len(separate.banks) == 3
    assert count(separate) == 3 * count(shared)
    with pytest.raises(ValueError, match="divisible by 16.*data.input_size"):
        shared.pyramid(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="pooling"):
        MultiResolutionTrunk(pooling="median")
    with pytest.raises(ValueError, match="num_poolings"):
        MultiResolutionTrunk(num_poolings=5)


def test_local_contrast_normalisation_removes_local_mean_and_scale():
    lcn = LocalContrastNormalisation(3)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = lcn(image)
    assert torch.allclose(lcn(3 * image + 5), out, atol=1e-4)  # invariant to gain and offset
    assert out[..., 8:-8, 8:-8].mean().abs() < 0.1
