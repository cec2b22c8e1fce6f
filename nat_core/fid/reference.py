"""Reference statistics files: pytorch-fid's ``.npz`` with ``mu`` (D,) and ``sigma`` (D, D)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from nat_core.fid.statistics import ArrayLike

__all__ = ["ReferenceStatsError", "load_reference_stats", "save_reference_stats"]


class ReferenceStatsError(ValueError):
    """A reference statistics file is missing or malformed."""


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
