"""The raw per-step space: all 4T-2 numbers of a strategy as they are, like the reference.

Parameters are named after what they are and the step they belong to (``mask_ratio_1`` ..
``mask_ratio_{T-1}``, ``remask_temp_1`` .., ``sample_temp_1`` .. ``sample_temp_T``,
``cfg_1`` .. ``cfg_T``), in the reference's order (ratios, re-mask temperatures, sampling
temperatures, guidance scales), each within its ``space.ranges`` entry. Ratios are not
forced to decrease: the reference's finite-difference search moves each number alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from autonat_search.errors import ConfigError
from nat_core.strategy import GenerationStrategy

# (parameter prefix, space.ranges key) of each block of the strategy vector, in order.
BLOCKS = (
    ("mask_ratio", "mask_ratio"),
    ("remask_temp", "remask_temp"),
    ("sample_temp", "sample_temp"),
    ("cfg", "cfg"),
)


def block_lengths(steps: int) -> tuple[int, int, int, int]:
    return steps - 1, steps - 1, steps, steps


def step_names(steps: int) -> list[str]:
    """The 4T-2 parameter names in the order of ``GenerationStrategy.to_vector``."""
    return [
        f"{prefix}_{t}"
        for (prefix, _), count in zip(BLOCKS, block_lengths(steps), strict=True)
        for t in range(1, count + 1)
    ]


def step_range_keys(steps: int) -> list[str]:
    """The ``space.ranges`` key of each of the 4T-2 numbers, in vector order."""
    return [
        key
        for (_, key), count in zip(BLOCKS, block_lengths(steps), strict=True)
        for _ in range(count)
    ]


def check_steps(strategy: GenerationStrategy, steps: int) -> None:
    if strategy.steps != steps:
        raise ConfigError(f"a warm start has {strategy.steps} steps; the study has {steps}")


@dataclass(frozen=True)
class RawStepSpace:
    steps: int
    ranges: dict[str, tuple[float, float]]

    @property
    def names(self) -> list[str]:
        return step_names(self.steps)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [self.ranges[key] for key in step_range_keys(self.steps)]

    def suggest(self, trial: optuna.Trial) -> GenerationStrategy:
        values = [
            trial.suggest_float(name, low, high)
            for name, (low, high) in zip(self.names, self.bounds, strict=True)
        ]
        return GenerationStrategy.from_vector(values, steps=self.steps)

    def params_for(self, strategy: GenerationStrategy) -> tuple[dict[str, Any], float]:
        check_steps(strategy, self.steps)
        params: dict[str, Any] = {}
        keys = step_range_keys(self.steps)
        for name, key, (low, high), value in zip(
            self.names, keys, self.bounds, strategy.to_vector(), strict=True
        ):
            if not low <= value <= high:
                raise ConfigError(f"{name} = {value} is outside space.ranges.{key} [{low}, {high}]")
            params[name] = value
        return params, 0.0
