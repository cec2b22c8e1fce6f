"""The Frechet distance between two Gaussians, and FID from accumulated statistics.

``fid_from_stats`` is the one FID path: every FID in the project (trials, re-evaluation,
``evaluate``, the demo figures, the benchmarks) is statistics accumulated in a
``FeatureStats`` and this function against reference statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nat_core.fid.statistics import ArrayLike, FeatureStats

__all__ = ["fid_from_stats", "frechet_distance"]


def _as_float64(x: ArrayLike, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(x).to(device=device, dtype=torch.float64)


@contextmanager
def _single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """The tridiagonal reduction inside CPU eigvalsh/eigh gains almost nothing from a second
    thread and slows down several-fold when cores are shared (measured at 2048-d, 2 cores:
    0.6 s on one thread, 1.5-5 s on two under load), so run it on one. The setting is
    process-wide and restored afterwards."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lower_congruence(factor: torch.Tensor, middle: torch.Tensor) -> torch.Tensor:
    """Lower triangle of ``factor^T middle factor`` for a lower-triangular ``factor`` (the
    strict upper triangle is left zero). Blocks skip the zeros of ``factor`` and the upper
    triangle: about 40% of the flops of two full products."""
    n = factor.shape[0]
    block = max(128, -(-n // 8))
    edges = [*range(0, n, block), n]
    right = torch.empty_like(middle)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        right[:, lo:hi] = middle[:, lo:] @ factor[lo:, lo:hi]
    out = torch.zeros_like(middle)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        out[lo:hi, :hi] = factor[lo:, lo:hi].mT @ right[lo:, :hi]
    return out


def _sqrt_eig_sum(lower: torch.Tensor) -> torch.Tensor:
    """Sum of square roots of the eigenvalues of a symmetric PSD matrix given by its lower
    triangle. Eigenvalues below the rounding level (n * eps * largest) count as 0: those of
    a singular product are rounding noise, and their square roots would add up."""
    with _single_thread_on_cpu(lower.device):
        w = torch.linalg.eigvalsh(lower, UPLO="L")
    if w.numel() == 0:
        return w.sum()
    floor = w.max().clamp_min(0) * w.shape[0] * torch.finfo(w.dtype).eps
    return torch.where(w > floor, w, 0).sqrt().sum()


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    device: torch.device | str | None = None,
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    tr sqrt(S1 S2) is the sum of square roots of the eigenvalues of the symmetric L^T S2 L
    (L the Cholesky factor of S1). When S1 is singular (fewer samples than dimensions) the
    roles swap if S2 is positive definite; when both are singular, F = V sqrt(W) from the
    eigendecomposition of S1 replaces L (F^T S2 F has the nonzero eigenvalues of
    sqrt(S1) S2 sqrt(S1)). Runs on ``device``, by default on the device of the first tensor
    argument (CPU for numpy inputs)."""
    if device is None:
        tensors = [x for x in (sigma1, sigma2, mu1, mu2) if isinstance(x, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
    dev = torch.device(device)
    m1, m2 = _as_float64(mu1, dev).reshape(-1), _as_float64(mu2, dev).reshape(-1)
    s1, s2 = _as_float64(sigma1, dev), _as_float64(sigma2, dev)
    d = m1.shape[0]
    if m2.shape[0] != d:
        raise ValueError(f"means have different lengths: {d} and {m2.shape[0]}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if tuple(s.shape) != (d, d):
            raise ValueError(f"{name} must be ({d}, {d}) to match the means, got {tuple(s.shape)}")
    if not (torch.isfinite(s1).all() and torch.isfinite(s2).all()):
        raise ValueError("sigma1 and sigma2 must be finite")

    chol, info = torch.linalg.cholesky_ex(s1)
    if int(info) == 0:
        product = _lower_congruence(chol, (s2 + s2.mT) / 2)
    else:
        chol, info = torch.linalg.cholesky_ex(s2)
        if int(info) == 0:
            product = _lower_congruence(chol, (s1 + s1.mT) / 2)
        else:
            with _single_thread_on_cpu(dev):
                w, v = torch.linalg.eigh(s1)
            keep = w > w.max().clamp_min(0) * d * torch.finfo(w.dtype).eps
            factor = v[:, keep] * w[keep].sqrt()
            product = factor.mT @ ((s2 + s2.mT) / 2) @ factor
    tr_covmean = _sqrt_eig_sum(product)

    diff = m1 - m2
    value = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return float(value)


def fid_from_stats(stats: FeatureStats, ref_mu: ArrayLike, ref_sigma: ArrayLike) -> float:
    """FID of accumulated statistics against reference statistics (on the stats' device)."""
    if stats.count < 2:
        raise ValueError(f"FID needs statistics of at least 2 samples, got {stats.count}")
    return frechet_distance(
        stats.mean(), stats.covariance(), ref_mu, ref_sigma, device=stats.device
    )
