"""The reference's finite-difference search as arithmetic on the 4T-2 raw numbers (SPEC 7).

One update, from the iterate ``x`` with FID ``f_0``:

* probe ``i`` raises number ``i`` alone by ``h_i`` (0.01 for mask ratios, clipped to [0, 1];
  0.1 for the rest, floored at 1e-4) and measures ``f_i``;
* ``g_i = (f_i - f_0) / (p_i - x_i)``, divided by the probe's actual step after clipping;
* optionally ``g`` is clipped element-wise to ``[-grad_clip, grad_clip]``;
* PyTorch's SGD with momentum 0.5, no dampening, no Nesterov: ``buf = g`` on the first
  update, ``buf = 0.5 * buf + g`` after; ``x = x - lr * buf`` with lr 1e-3 for ratios and
  0.1 for the rest;
* ratios clipped to [0, 0.99], the rest floored at 1e-4.

The one addition to the reference: the study's ``space.ranges`` also bound the numbers
(the reference has no ceiling). A probe that would leave them is clipped like the
reference's, and where it cannot move forward at all (a number at its ceiling) it steps
backwards by ``h_i``; the division by the actual step keeps the gradient right either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autonat_search.errors import ConfigError
from autonat_search.spaces.raw import block_lengths, step_names, step_range_keys
from nat_core.strategy import GenerationStrategy


@dataclass(frozen=True)
class FiniteDifferenceSettings:
    """The reference's constants (``train.py`` search mode defaults)."""

    ratio_step: float = 0.01
    other_step: float = 0.1
    ratio_lr: float = 1e-3
    other_lr: float = 0.1
    momentum: float = 0.5
    grad_clip: float | None = None
    ratio_ceiling: float = 0.99
    floor: float = 1e-4


@dataclass(frozen=True)
class FiniteDifferenceRule:
    """Probe points and the update of one search over a T-step strategy vector."""

    steps: int
    start: np.ndarray
    step: np.ndarray
    lr: np.ndarray
    lower: np.ndarray  # bounds of the iterate
    upper: np.ndarray
    probe_lower: np.ndarray  # bounds of a probe
    probe_upper: np.ndarray
    momentum: float
    grad_clip: float | None

    @property
    def size(self) -> int:
        return len(self.start)

    def probe(self, x: np.ndarray, coordinate: int) -> np.ndarray:
        """``x`` with number ``coordinate`` moved by its step (see the module note)."""
        point = x.copy()
        lo, hi = self.probe_lower[coordinate], self.probe_upper[coordinate]
        moved = min(max(x[coordinate] + self.step[coordinate], lo), hi)
        if moved == x[coordinate]:
            moved = min(max(x[coordinate] - self.step[coordinate], lo), hi)
        point[coordinate] = moved
        return point

    def gradient(self, x: np.ndarray, centre_fid: float, probe_fids: Sequence[float]) -> np.ndarray:
        steps = np.array([self.probe(x, i)[i] - x[i] for i in range(self.size)])
        grad = (np.asarray(probe_fids, dtype=np.float64) - centre_fid) / steps
        if self.grad_clip is not None:
            grad = np.clip(grad, -self.grad_clip, self.grad_clip)
        return grad

    def update(
        self,
        x: np.ndarray,
        momentum_buffer: np.ndarray | None,
        centre_fid: float,
        probe_fids: Sequence[float],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next iterate and momentum buffer."""
        grad = self.gradient(x, centre_fid, probe_fids)
        buffer = grad.copy() if momentum_buffer is None else self.momentum * momentum_buffer + grad
        moved = x - self.lr * buffer
        return np.clip(moved, self.lower, self.upper), buffer


def reference_rule(
    steps: int,
    ranges: dict[str, tuple[float, float]],
    settings: FiniteDifferenceSettings = FiniteDifferenceSettings(),
) -> FiniteDifferenceRule:
    """The reference's search from its initial schedule, within ``ranges`` (raw space's)."""
    n_ratios = block_lengths(steps)[0]
    is_ratio = np.arange(4 * steps - 2) < n_ratios
    keys = step_range_keys(steps)
    low = np.array([ranges[k][0] for k in keys], dtype=np.float64)
    high = np.array([ranges[k][1] for k in keys], dtype=np.float64)
    ratio_low, ratio_high = np.maximum(low, 0.0), np.minimum(high, 1.0)
    other_low = np.maximum(low, settings.floor)
    lower = np.where(is_ratio, ratio_low, other_low)
    upper = np.where(is_ratio, np.minimum(high, settings.ratio_ceiling), high)
    start = np.asarray(GenerationStrategy.reference_initial(steps).to_vector(), dtype=np.float64)
    for name, key, value, lo, hi in zip(step_names(steps), keys, start, lower, upper, strict=True):
        if lo > hi:
            raise ConfigError(
                f"space.ranges.{key} {list(ranges[key])} leaves the finite-difference search "
                f"no room for {name} (its numbers stay within [{lo}, {hi}])"
            )
        if not lo <= value <= hi:
            raise ConfigError(
                f"space.ranges.{key} {list(ranges[key])} excludes the finite-difference start "
                f"{name} = {value}"
            )
    if settings.grad_clip is not None and not settings.grad_clip > 0:
        raise ConfigError(f"sampler.grad_clip must be > 0, got {settings.grad_clip}")
    return FiniteDifferenceRule(
        steps=steps,
        start=start,
        step=np.where(is_ratio, settings.ratio_step, settings.other_step),
        lr=np.where(is_ratio, settings.ratio_lr, settings.other_lr),
        lower=lower,
        upper=upper,
        probe_lower=np.where(is_ratio, ratio_low, other_low),
        probe_upper=np.where(is_ratio, ratio_high, high),
        momentum=settings.momentum,
        grad_clip=settings.grad_clip,
    )
