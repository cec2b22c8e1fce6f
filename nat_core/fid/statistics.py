"""Streaming feature statistics (count, sum, sum of outer products) and their computation
from batches of images."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

__all__ = ["ArrayLike", "FeatureStats", "feature_dim_of", "is_feature_dim", "stats_from_images"]

ArrayLike = np.ndarray | torch.Tensor


@dataclass(eq=False)
class FeatureStats:
    """Streaming feature statistics: count, float64 sum and float64 sum of outer products.
    Statistics of disjoint sample sets merge by addition."""

    count: int
    total: torch.Tensor
    outer: torch.Tensor

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.total.ndim != 1:
            raise ValueError(f"total must be 1-D, got shape {tuple(self.total.shape)}")
        d = self.total.shape[0]
        if tuple(self.outer.shape) != (d, d):
            raise ValueError(
                f"outer must be ({d}, {d}) to match total, got {tuple(self.outer.shape)}"
            )
        self.total = self.total.to(torch.float64)
        self.outer = self.outer.to(device=self.total.device, dtype=torch.float64)

    @classmethod
    def empty(cls, dim: int, device: torch.device | str | None = None) -> FeatureStats:
        if dim <= 0:
            raise ValueError(f"feature dim must be positive, got {dim}")
        return cls(
            count=0,
            total=torch.zeros(dim, dtype=torch.float64, device=device),
            outer=torch.zeros(dim, dim, dtype=torch.float64, device=device),
        )

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    @property
    def device(self) -> torch.device:
        return self.total.device

    def update(self, features: ArrayLike) -> FeatureStats:
        """Accumulate a batch of features (B, D) in place; returns self."""
        f = torch.as_tensor(features).to(device=self.device, dtype=torch.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (B, {self.dim}), got {tuple(f.shape)}")
        self.count += int(f.shape[0])
        self.total += f.sum(dim=0)
        self.outer.addmm_(f.mT, f)
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Statistics of the union of both sample sets (a new object)."""
        if not isinstance(other, FeatureStats):
            raise ValueError(f"can only merge FeatureStats, got {type(other).__name__}")
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dim {self.dim} and {other.dim}")
        return FeatureStats(
            count=self.count + other.count,
            total=self.total + other.total.to(self.device),
            outer=self.outer + other.outer.to(self.device),
        )

    def __add__(self, other: FeatureStats) -> FeatureStats:
        return self.merge(other)

    def __radd__(self, other: object) -> FeatureStats:
        if isinstance(other, int) and other == 0:  # so that sum(list_of_stats) works
            return self
        if isinstance(other, FeatureStats):
            return other.merge(self)
        return NotImplemented

    def to(self, device: torch.device | str) -> FeatureStats:
        return FeatureStats(self.count, self.total.to(device), self.outer.to(device))

    def mean(self) -> torch.Tensor:
        if self.count < 1:
            raise ValueError("mean needs at least 1 sample, statistics are empty")
        return self.total / self.count

    def covariance(self) -> torch.Tensor:
        """Unbiased covariance (like ``np.cov(features, rowvar=False)``)."""
        if self.count < 2:
            raise ValueError(f"covariance needs at least 2 samples, got {self.count}")
        mu = self.mean()
        cov = (self.outer - self.count * torch.outer(mu, mu)) / (self.count - 1)
        return (cov + cov.mT) / 2

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (cheap to pickle, e.g. between Ray workers)."""
        return {
            "count": np.asarray(self.count, dtype=np.int64),
            "total": self.total.detach().cpu().numpy(),
            "outer": self.outer.detach().cpu().numpy(),
        }

    @classmethod
    def from_numpy_dict(
        cls, data: dict[str, Any], device: torch.device | str | None = None
    ) -> FeatureStats:
        missing = {"count", "total", "outer"} - set(data)
        if missing:
            raise ValueError(f"feature statistics dict lacks {sorted(missing)}")
        return cls(
            count=int(np.asarray(data["count"])),
            total=torch.as_tensor(np.array(data["total"], dtype=np.float64), device=device),
            outer=torch.as_tensor(np.array(data["outer"], dtype=np.float64), device=device),
        )


def is_feature_dim(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def feature_dim_of(extractor: nn.Module) -> int:
    """The extractor's ``feature_dim`` (D of its (B, D) features), checked."""
    dim = getattr(extractor, "feature_dim", None)
    if not isinstance(dim, int) or not is_feature_dim(dim):
        raise ValueError(
            f"extractor {type(extractor).__name__} has no positive int feature_dim, got {dim!r}"
        )
    return dim


def stats_from_images(
    images: Iterable[torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]],
    extractor: nn.Module,
    *,
    device: torch.device | str,
    progress: bool = False,
    total: int | None = None,
) -> FeatureStats:
    """Feature statistics of batches of images in [0, 1], (B, 3, H, W). Batches may also be
    ``(images, labels, ...)`` tuples as a DataLoader yields them. ``total`` (number of
    images) is only used for the progress bar."""
    stats = FeatureStats.empty(feature_dim_of(extractor), device=device)
    with tqdm(total=total, unit="img", desc="features", disable=not progress) as bar:
        for batch in images:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            x = x.to(device=device, dtype=torch.float32, non_blocking=True)
            with torch.inference_mode():
                features = extractor(x)
            stats.update(features)  # outside: stats stay normal tensors, updatable later
            bar.update(int(x.shape[0]))
    return stats
