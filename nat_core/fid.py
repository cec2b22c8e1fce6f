"""Feature extractors, streaming feature statistics and the Frechet distance (FID).

Feature extractors are ``nn.Module``s that take images in [0, 1] of shape (B, 3, H, W) and
return features (B, D); each has an integer attribute ``feature_dim`` (= D). They are built
by name from a registry, so that other parts of the project can plug in their own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
from torch import nn
from tqdm import tqdm

ArrayLike = np.ndarray | torch.Tensor

INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_FEATURE_DIM = 2048


class FeatureWeightsError(ValueError):
    """A feature extractor's weights file is missing or is not a matching state dict."""


class ReferenceStatsError(ValueError):
    """A reference statistics file is missing or malformed."""


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_feature_extractor(
    name: str, factory: Callable[..., nn.Module], *, replace: bool = False
) -> None:
    """Register ``factory(**kwargs) -> nn.Module`` (with ``feature_dim``) under ``name``."""
    if not name:
        raise ValueError("feature extractor name must be a non-empty string")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not factory and not replace:
        raise ValueError(f"feature extractor {name!r} is already registered to {existing!r}")
    _REGISTRY[name] = factory


def available_feature_extractors() -> list[str]:
    return sorted(_REGISTRY)


def build_feature_extractor(name: str, **kwargs: Any) -> nn.Module:
    """Build the feature extractor registered as ``name``, in eval mode."""
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(available_feature_extractors()) or "none"
        raise ValueError(f"unknown feature extractor {name!r}; known: {known}")
    module = factory(**kwargs)
    dim = getattr(module, "feature_dim", None)
    if not isinstance(module, nn.Module) or not isinstance(dim, int) or dim <= 0:
        raise ValueError(
            f"feature extractor {name!r} must build an nn.Module with a positive int "
            f"feature_dim, got {type(module).__name__} with feature_dim={dim!r}"
        )
    return module.eval()


# --------------------------------------------------------------------------- Inception


def build_fid_inception_network() -> nn.Module:
    """pytorch-fid's FID InceptionV3 architecture (torchvision Inception3 with the FID
    blocks), with freshly initialised weights; its state dict has the keys of
    ``pt_inception-2015-12-05-6726825d.pth``. Nothing is downloaded."""
    net = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, init_weights=False, weights=None
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def _missing_weights_message(path: Path) -> str:
    return (
        f"Inception weights file not found: {path} (expected there). Download pytorch-fid's "
        f"{INCEPTION_WEIGHTS_FILENAME} by hand (https://github.com/mseitzer/pytorch-fid/"
        f"releases/download/fid_weights/{INCEPTION_WEIGHTS_FILENAME}) and place it at {path}; "
        "nothing is downloaded at run time"
    )


def _load_inception_weights(net: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FeatureWeightsError(_missing_weights_message(path))
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FeatureWeightsError(
            f"Inception weights file {path} is not a readable PyTorch state dict "
            f"({type(exc).__name__}: {exc}); expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        ) from exc
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise FeatureWeightsError(
            f"Inception weights file {path} does not hold a state dict of tensors; "
            f"expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        )
    try:
        net.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatureWeightsError(
            f"Inception weights file {path} does not match pytorch-fid's FID InceptionV3 "
            f"({summary}); expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        ) from exc
    unset = [k for k, v in net.state_dict().items() if v.is_meta]
    if unset:
        raise FeatureWeightsError(f"Inception weights file {path} leaves {unset[:3]} unset")


class InceptionFeatures(nn.Module):
    """pytorch-fid's ``InceptionV3(output_blocks=[3], resize_input=True,
    normalize_input=True)``: images in [0, 1] -> 2048-d pool3 features, weights loaded
    strictly from a local ``pt_inception-2015-12-05-6726825d.pth``."""

    feature_dim: int = INCEPTION_FEATURE_DIM

    def __init__(self, *, weights_path: str | Path) -> None:
        super().__init__()
        path = Path(weights_path).expanduser()
        # Built on the meta device: no time spent on an initialisation the file replaces.
        with torch.device("meta"):
            net = build_fid_inception_network()
        _load_inception_weights(net, path)
        net = net.float()
        self.weights_path = path
        self.blocks = nn.Sequential(
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
            net.Mixed_7a,
            net.Mixed_7b,
            net.Mixed_7c,
            nn.AdaptiveAvgPool2d(output_size=(1, 1)),
        )
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        return self.blocks(x).flatten(1)


register_feature_extractor("inception-v3-fid", InceptionFeatures)


# --------------------------------------------------------------------------- statistics


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
    dim = getattr(extractor, "feature_dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"extractor {type(extractor).__name__} has no int feature_dim")
    stats = FeatureStats.empty(dim, device=device)
    with tqdm(total=total, unit="img", desc="features", disable=not progress) as bar:
        for batch in images:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            x = x.to(device=device, dtype=torch.float32, non_blocking=True)
            with torch.inference_mode():
                features = extractor(x)
            stats.update(features)  # outside: stats stay normal tensors, updatable later
            bar.update(int(x.shape[0]))
    return stats


# --------------------------------------------------------------------------- Frechet distance


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


# --------------------------------------------------------------------------- reference stats


def _check_stats_shapes(
    mu: np.ndarray, sigma: np.ndarray, path: Path, feature_dim: int | None
) -> None:
    if mu.ndim != 1:
        raise ReferenceStatsError(f"{path}: 'mu' must be 1-D, got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ReferenceStatsError(
            f"{path}: 'sigma' must be ({d}, {d}) to match 'mu', got shape {sigma.shape}"
        )
    if feature_dim is not None and d != feature_dim:
        raise ReferenceStatsError(
            f"{path}: statistics are {d}-d, but the feature extractor gives {feature_dim}-d"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f"{path}: 'mu' or 'sigma' holds non-finite values")


def load_reference_stats(
    path: str | Path, *, feature_dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load pytorch-fid ``.npz`` statistics: (mu (D,), sigma (D, D)), both float64."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ReferenceStatsError(f"reference statistics file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in ("mu", "sigma") if k not in data.files]
            if missing:
                raise ReferenceStatsError(
                    f"{p}: reference statistics lack {missing} (found {data.files})"
                )
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
    except ReferenceStatsError:
        raise
    except Exception as exc:
        raise ReferenceStatsError(
            f"{p}: not a readable .npz of reference statistics ({type(exc).__name__}: {exc})"
        ) from exc
    _check_stats_shapes(mu, sigma, p, feature_dim)
    return mu, sigma


def save_reference_stats(path: str | Path, mu: ArrayLike, sigma: ArrayLike) -> Path:
    """Write pytorch-fid ``.npz`` statistics atomically to exactly ``path``."""
    p = Path(path).expanduser()
    mu_np = np.asarray(torch.as_tensor(mu).detach().cpu(), dtype=np.float64)
    sigma_np = np.asarray(torch.as_tensor(sigma).detach().cpu(), dtype=np.float64)
    _check_stats_shapes(mu_np, sigma_np, p, None)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, mu=mu_np, sigma=sigma_np)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
