"""The centred per-step space: every number near the reference's initial schedule.

Parameters are the real per-step numbers a person reads (``mask_ratio_1`` .. ``cfg_T``, as
in the raw space), each drawn from a window around the reference's initial schedule
(cosine ratios, linear temperatures and guidance): ``[c - w, c + w]`` within
``space.ranges``, with the half-widths ``CENTRE_WIDTHS``. A uniform draw is therefore
centred on a schedule that works, not on the middle of [0, 1] for every fraction.

Ratios are kept non-increasing by construction: ``r_t = min(mask_ratio_t, r_{t-1})``. A
non-increasing schedule inside the windows (the published AutoNAT-L-T8 strategy included)
maps to itself, so its warm start is enqueued exactly; any other is enqueued as the
nearest point (each number clipped into its window) and its deviation is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from autonat_search.spaces.raw import block_lengths, check_steps, step_names, step_range_keys
from nat_core.strategy import GenerationStrategy

CENTRE_WIDTHS: dict[str, float] = {
    "mask_ratio": 0.15,
    "remask_temp": 2.0,
    "sample_temp": 2.0,
    "cfg": 2.0,
}


@dataclass(frozen=True)
class CenteredSpace:
    steps: int
    ranges: dict[str, tuple[float, float]]
    widths: dict[str, float] = field(default_factory=lambda: dict(CENTRE_WIDTHS))

    @property
    def names(self) -> list[str]:
        return step_names(self.steps)

    @property
    def centre(self) -> np.ndarray:
        return np.asarray(GenerationStrategy.reference_initial(self.steps).to_vector())

    def windows(self) -> list[tuple[float, float]]:
        out = []
        for key, c in zip(step_range_keys(self.steps), self.centre, strict=True):
            low, high = self.ranges[key]
            width = self.widths[key]
            out.append((min(max(c - width, low), high), min(max(c + width, low), high)))
        return out

    def strategy(self, params: dict[str, Any]) -> GenerationStrategy:
        values = np.array([params[name] for name in self.names], dtype=np.float64)
        n_ratios = block_lengths(self.steps)[0]
        values[:n_ratios] = np.minimum.accumulate(values[:n_ratios])
        return GenerationStrategy.from_vector(values.tolist(), steps=self.steps)

    def suggest(self, trial: optuna.Trial) -> GenerationStrategy:
        params = {
            name: trial.suggest_float(name, low, high)
            for name, (low, high) in zip(self.names, self.windows(), strict=True)
        }
        return self.strategy(params)

    def params_for(self, strategy: GenerationStrategy) -> tuple[dict[str, Any], float]:
        """Each number clipped into its window, and the largest deviation that leaves."""
        check_steps(strategy, self.steps)
        target = np.asarray(strategy.to_vector(), dtype=np.float64)
        low, high = np.array(self.windows()).T
        params = dict(zip(self.names, np.clip(target, low, high).tolist(), strict=True))
        decoded = np.asarray(self.strategy(params).to_vector())
        return params, float(np.max(np.abs(decoded - target)))
