"""Streaming feature statistics and their computation from image batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nat_core.fid import FeatureStats, stats_from_images


def test_stats_batches_and_merged_shards_equal_all_at_once() -> None:
    rng = np.random.default_rng(3)
    d = 48
    feats = rng.standard_normal((500, d)) * rng.uniform(0.1, 3.0, d) + rng.uniform(0, 5, d)
    cuts = [0, 3, 40, 41, 170, 300, 301, 500]  # 7 uneven batches

    batched = FeatureStats.empty(d)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        batched.update(torch.from_numpy(feats[lo:hi]))
    shards = [
        FeatureStats.empty(d).update(feats[lo:hi]) for lo, hi in [(0, 123), (123, 124), (124, 500)]
    ]
    merged = shards[0] + shards[1] + shards[2]
    summed = sum(shards)
    travelled = FeatureStats.from_numpy_dict(merged.to_numpy_dict())

    want_mu, want_cov = feats.mean(0), np.cov(feats, rowvar=False)
    for stats in (batched, merged, summed, travelled):
        assert isinstance(stats, FeatureStats)
        assert stats.count == 500
        np.testing.assert_allclose(stats.mean().numpy(), want_mu, rtol=0, atol=1e-10)
        np.testing.assert_allclose(stats.covariance().numpy(), want_cov, rtol=0, atol=1e-10)
    assert shards[0].count == 123  # merging does not mutate its operands


def test_stats_errors() -> None:
    with pytest.raises(ValueError, match="dim 4 and 5"):
        FeatureStats.empty(4).merge(FeatureStats.empty(5))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        FeatureStats.empty(4).update(torch.zeros(2, 5))
    one = FeatureStats.empty(4).update(torch.ones(1, 4))
    with pytest.raises(ValueError, match="at least 2"):
        one.covariance()
    with pytest.raises(ValueError, match="lacks"):
        FeatureStats.from_numpy_dict({"count": 1})


class TinyExtractor(nn.Module):
    def __init__(self, dim: int = 5) -> None:
        super().__init__()
        self.feature_dim = dim
        self.proj = nn.Linear(3, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images.mean(dim=(2, 3)))


def test_stats_from_images_accepts_tensors_and_loader_tuples() -> None:
    gen = torch.Generator().manual_seed(0)
    extractor = TinyExtractor(4).eval()
    images = torch.rand(10, 3, 8, 8, generator=gen)
    batches = [images[:3], (images[3:7], torch.zeros(4)), [images[7:]]]
    stats = stats_from_images(batches, extractor, device="cpu", progress=False)
    with torch.no_grad():
        feats = extractor(images).double().numpy()
    assert stats.count == 10
    np.testing.assert_allclose(stats.mean().numpy(), feats.mean(0), atol=1e-6)
    stats.update(torch.zeros(1, 4))  # the result is not an inference tensor: still updatable
    assert (stats + stats).count == 22
