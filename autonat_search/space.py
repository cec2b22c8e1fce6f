"""Search spaces: an Optuna trial -> a ``GenerationStrategy``, and a strategy -> parameters.

Both spaces keep mask ratios non-increasing by construction:

* ``per-step``: all 4T-2 numbers, like the reference. Ratios are stick-breaking fractions,
  ``r_t = lo + (r_{t-1} - lo) * mask_fraction_t`` with ``r_0 = hi``, so every
  non-increasing schedule in [lo, hi] (the published one included) has parameters.
* ``parametric``: a few numbers per schedule: a mask family (``cosine``: cos(pi/2 x^a),
  ``power``: 1 - x^a, x = t/T) and exponent a; linear re-mask and sampling temperatures
  (start, end); guidance zero for ``cfg_warmup`` steps, then linear from start to end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.optimize import lsq_linear, minimize_scalar

from autonat_search.config import SpaceConfig
from autonat_search.errors import ConfigError
from autonat_search.spaces import CenteredSpace, RawStepSpace
from nat_core.strategy import GenerationStrategy

__all__ = [
    "ParametricSpace",
    "PerStepSpace",
    "SearchSpace",
    "build_space",
    "mask_curve",
    "space_distributions",
]


class SearchSpace(Protocol):
    def suggest(self, trial: optuna.Trial) -> GenerationStrategy: ...

    def params_for(self, strategy: GenerationStrategy) -> tuple[dict[str, Any], float]:
        """Parameters of the nearest representable strategy, and its max deviation."""
        ...


def build_space(config: SpaceConfig, *, steps: int) -> SearchSpace:
    if config.kind == "per-step":
        return PerStepSpace(steps=steps, ranges=config.ranges)
    if config.kind == "raw":
        return RawStepSpace(steps=steps, ranges=config.ranges)
    if config.kind == "centered":
        return CenteredSpace(steps=steps, ranges=config.ranges)
    return ParametricSpace(steps=steps, ranges=config.ranges, families=config.mask_families)


def space_distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """Every parameter a trial of ``space`` suggests, with its distribution: the spaces here
    suggest the same parameters in every trial, whatever the values drawn."""
    recorder = _SuggestionRecorder()
    space.suggest(cast(optuna.Trial, recorder))
    return recorder.distributions


class _SuggestionRecorder:
    """What a space asks an Optuna trial for, answered with each range's midpoint."""

    def __init__(self) -> None:
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.distributions[name] = FloatDistribution(low, high, step=step, log=log)
        return math.sqrt(low * high) if log else (low + high) / 2

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        self.distributions[name] = IntDistribution(low, high, step=step, log=log)
        return low

    def suggest_categorical(
        self, name: str, choices: Sequence[CategoricalChoiceType]
    ) -> CategoricalChoiceType:
        self.distributions[name] = CategoricalDistribution(choices)
        return choices[0]


@dataclass(frozen=True)
class PerStepSpace:
    steps: int
    ranges: dict[str, tuple[float, float]]

    def suggest(self, trial: optuna.Trial) -> GenerationStrategy:
        lo, hi = self.ranges["mask_ratio"]
        ratios, previous = [], hi
        for t in range(1, self.steps):
            fraction = trial.suggest_float(f"mask_fraction_{t}", 0.0, 1.0)
            previous = lo + (previous - lo) * fraction
            ratios.append(previous)

        def floats(name: str, key: str, count: int) -> tuple[float, ...]:
            low, high = self.ranges[key]
            return tuple(trial.suggest_float(f"{name}_{t}", low, high) for t in range(1, count + 1))

        return GenerationStrategy(
            mask_ratios=tuple(ratios),
            remask_temps=floats("remask_temp", "remask_temp", self.steps - 1),
            sample_temps=floats("sample_temp", "sample_temp", self.steps),
            cfg_scales=floats("cfg", "cfg", self.steps),
        )

    def params_for(self, strategy: GenerationStrategy) -> tuple[dict[str, Any], float]:
        _check_steps(strategy, self.steps)
        lo, hi = self.ranges["mask_ratio"]
        params: dict[str, Any] = {}
        previous = hi
        for t, ratio in enumerate(strategy.mask_ratios, start=1):
            if not lo <= ratio <= previous:
                raise ConfigError(
                    f"mask_ratios[{t - 1}] = {ratio} is outside [{lo}, {previous}]: the per-step "
                    "space holds non-increasing ratios within space.ranges.mask_ratio"
                )
            params[f"mask_fraction_{t}"] = 0.0 if previous == lo else (ratio - lo) / (previous - lo)
            previous = ratio
        for name, key, values in (
            ("remask_temp", "remask_temp", strategy.remask_temps),
            ("sample_temp", "sample_temp", strategy.sample_temps),
            ("cfg", "cfg", strategy.cfg_scales),
        ):
            low, high = self.ranges[key]
            for t, value in enumerate(values, start=1):
                if not low <= value <= high:
                    raise ConfigError(
                        f"{name}_{t} = {value} is outside space.ranges.{key} [{low}, {high}]"
                    )
                params[f"{name}_{t}"] = value
        return params, 0.0


def _check_steps(strategy: GenerationStrategy, steps: int) -> None:
    if strategy.steps != steps:
        raise ConfigError(f"a warm start has {strategy.steps} steps; the study has {steps}")


def mask_curve(family: str, exponent: float, steps: int) -> np.ndarray:
    x = np.arange(1, steps) / steps
    if family == "cosine":
        return np.cos(math.pi / 2 * x**exponent)
    return 1.0 - x**exponent


def _linear(start: float, end: float, count: int) -> np.ndarray:
    return np.linspace(start, end, count) if count > 1 else np.array([start][:count])


def _cfg_curve(start: float, end: float, warmup: int, steps: int) -> np.ndarray:
    return np.concatenate([np.zeros(warmup), _linear(start, end, steps - warmup)])


@dataclass(frozen=True)
class ParametricSpace:
    steps: int
    ranges: dict[str, tuple[float, float]]
    families: tuple[str, ...]

    def strategy(self, p: dict[str, Any]) -> GenerationStrategy:
        lo, hi = self.ranges["mask_ratio"]
        ratios = lo + (hi - lo) * mask_curve(p["mask_family"], p["mask_exponent"], self.steps)
        return GenerationStrategy(
            mask_ratios=ratios.tolist(),
            remask_temps=_linear(
                p["remask_temp_start"], p["remask_temp_end"], self.steps - 1
            ).tolist(),
            sample_temps=_linear(p["sample_temp_start"], p["sample_temp_end"], self.steps).tolist(),
            cfg_scales=_cfg_curve(
                p["cfg_start"], p["cfg_end"], p["cfg_warmup"], self.steps
            ).tolist(),
        )

    def suggest(self, trial: optuna.Trial) -> GenerationStrategy:
        p: dict[str, Any] = {
            "mask_family": trial.suggest_categorical("mask_family", list(self.families)),
            "mask_exponent": trial.suggest_float("mask_exponent", *self.ranges["mask_exponent"]),
        }
        for key in ("remask_temp", "sample_temp", "cfg"):
            for end in ("start", "end"):
                p[f"{key}_{end}"] = trial.suggest_float(f"{key}_{end}", *self.ranges[key])
        p["cfg_warmup"] = trial.suggest_int("cfg_warmup", 0, self.steps - 1)
        return self.strategy(p)

    def params_for(self, strategy: GenerationStrategy) -> tuple[dict[str, Any], float]:
        """The nearest point of the space (least squares per schedule) and its max deviation."""
        _check_steps(strategy, self.steps)
        lo, hi = self.ranges["mask_ratio"]
        target = (np.asarray(strategy.mask_ratios) - lo) / (hi - lo)
        best: tuple[float, str, float] | None = None
        for family in self.families:
            fit = minimize_scalar(
                lambda a, f=family: float(np.sum((mask_curve(f, a, self.steps) - target) ** 2)),
                bounds=self.ranges["mask_exponent"],
                method="bounded",
                options={"xatol": 1e-10},
            )
            if best is None or fit.fun < best[0]:
                best = (float(fit.fun), family, float(fit.x))
        assert best is not None
        params: dict[str, Any] = {"mask_family": best[1], "mask_exponent": best[2]}
        for key, values in (
            ("remask_temp", strategy.remask_temps),
            ("sample_temp", strategy.sample_temps),
        ):
            params[f"{key}_start"], params[f"{key}_end"] = self._fit_line(values, key)
        best_cfg: tuple[float, int, float, float] | None = None
        for warmup in range(self.steps):
            tail = strategy.cfg_scales[warmup:]
            start, end = self._fit_line(tail, "cfg")
            error = float(
                np.sum(
                    (_cfg_curve(start, end, warmup, self.steps) - np.asarray(strategy.cfg_scales))
                    ** 2
                )
            )
            if best_cfg is None or error < best_cfg[0] - 1e-15:
                best_cfg = (error, warmup, start, end)
        assert best_cfg is not None
        params.update(cfg_warmup=best_cfg[1], cfg_start=best_cfg[2], cfg_end=best_cfg[3])
        fitted = self.strategy(params).to_vector()
        deviation = float(np.max(np.abs(np.asarray(fitted) - strategy.to_vector())))
        return params, deviation

    def _fit_line(self, values: Any, key: str) -> tuple[float, float]:
        values = np.asarray(values, dtype=float)
        low, high = self.ranges[key]
        if len(values) == 1:
            value = float(np.clip(values[0], low, high))
            return value, value
        t = np.linspace(0.0, 1.0, len(values))
        design = np.stack([1.0 - t, t], axis=1)
        fit = lsq_linear(design, values, bounds=(low, high))
        return float(fit.x[0]), float(fit.x[1])
