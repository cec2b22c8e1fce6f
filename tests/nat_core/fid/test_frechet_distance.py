"""frechet_distance and fid_from_stats against pytorch-fid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from nat_core.fid import FeatureStats, fid_from_stats, frechet_distance

# pytorch-fid 0.3.0 passes scipy's deprecated `disp` to sqrtm.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def random_spd(rng: np.random.Generator, d: int, n: int, eps: float = 1e-6) -> np.ndarray:
    a = rng.standard_normal((d, n))
    return a @ a.T / n + eps * np.eye(d)


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("d", [64, pytest.param(2048, marks=pytest.mark.slow)])
def test_frechet_distance_matches_pytorch_fid(d: int) -> None:
    rng = np.random.default_rng(d)
    sigma1, sigma2 = random_spd(rng, d, 2 * d), random_spd(rng, d, 3 * d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) + 0.1
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    theirs = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    assert rel_diff(ours, theirs) < 1e-6


@pytest.mark.parametrize("ref_samples", [256, 40], ids=["sigma2-definite", "both-singular"])
def test_frechet_distance_singular_sigma1_fallback_matches(ref_samples: int) -> None:
    rng = np.random.default_rng(ref_samples)
    d = 64
    x = rng.standard_normal((32, d)) + 0.5  # fewer samples than dimensions
    y = 1.3 * rng.standard_normal((ref_samples, d))
    mu1, sigma1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, sigma2 = y.mean(0), np.cov(y, rowvar=False)
    assert int(torch.linalg.cholesky_ex(torch.from_numpy(sigma1))[1]) != 0
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    theirs = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    assert rel_diff(ours, theirs) < 1e-6
    # Exact trace term: S1 = Xc^T Xc / (n - 1), so the nonzero eigenvalues of S1 S2 are
    # those of the small Xc S2 Xc^T / (n - 1).
    xc = x - mu1
    small = xc @ sigma2 @ xc.T / (len(x) - 1)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)).sum()
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt
    assert rel_diff(ours, exact) < 1e-8
    assert rel_diff(frechet_distance(mu2, sigma2, mu1, sigma1), exact) < 1e-8


def test_frechet_distance_accepts_tensors_and_is_zero_for_equal_gaussians() -> None:
    rng = np.random.default_rng(2)
    sigma = random_spd(rng, 32, 64)
    mu = rng.standard_normal(32)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    sigma2 = random_spd(rng, 32, 40)
    from_numpy = frechet_distance(mu, sigma, 0 * mu, sigma2)
    from_tensors = frechet_distance(
        torch.from_numpy(mu), torch.from_numpy(sigma), torch.zeros(32), torch.from_numpy(sigma2)
    )
    assert from_tensors == pytest.approx(from_numpy, rel=1e-12)


def test_frechet_distance_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="lengths"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(3))


def test_fid_from_stats_matches_pytorch_fid() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((300, 16)), rng.standard_normal((400, 16)) * 1.5 + 0.2
    stats = FeatureStats.empty(16).update(x)
    ref_mu, ref_sigma = y.mean(0), np.cov(y, rowvar=False)
    want = calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), ref_mu, ref_sigma)
    assert rel_diff(fid_from_stats(stats, ref_mu, ref_sigma), float(want)) < 1e-9
