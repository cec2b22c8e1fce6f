"""The study config's sampler and pruner names -> Optuna objects."""

from __future__ import annotations

from collections.abc import Mapping

import optuna
from optuna.distributions import BaseDistribution

from autonat_search.config import FidelityConfig, SamplerConfig, StudyConfig
from autonat_search.samplers.finite_difference import FINITE_DIFFERENCE, FiniteDifferenceSampler
from autonat_search.samplers.known_space import KnownSpaceTPESampler
from autonat_search.samplers.rung_pruner import RungPruner, RungValues
from autonat_search.samplers.trial_seeded import TrialSeededSampler

__all__ = ["build_pruner", "build_sampler", "build_study_sampler", "study_pruner"]


Distributions = Mapping[str, BaseDistribution]  # a search space: parameter name -> distribution


def build_sampler(
    config: SamplerConfig, *, seed: int, search_space: Distributions | None = None
) -> optuna.samplers.BaseSampler:
    """One Optuna sampler seeded with ``seed`` (``build_study_sampler`` gives each trial one).
    ``search_space``: every parameter a trial suggests, the same in every trial; TPE is then
    told it instead of inferring it (``KnownSpaceTPESampler``: the same trials, a read fewer)."""
    if config.name == "tpe":
        if search_space is not None:
            return KnownSpaceTPESampler(search_space, seed=seed, constant_liar=True)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if config.name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if config.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if config.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler {config.name!r} is not one of Optuna's")


def build_study_sampler(
    config: StudyConfig, *, search_space: Distributions | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler a worker runs a study with: random choices from (seed, trial number);
    ``search_space`` as for ``build_sampler``."""
    if config.sampler.name == FINITE_DIFFERENCE:  # no random choices
        return FiniteDifferenceSampler.for_study(config)
    return TrialSeededSampler(
        lambda seed: build_sampler(config.sampler, seed=seed, search_space=search_space),
        seed=config.sampler.seed,
    )


def build_pruner(
    config: FidelityConfig, *, rung_values: RungValues | None = None
) -> optuna.pruners.BasePruner:
    """``rung_values``: the storage's read of a rung's values, for the rung pruner."""
    if config.pruner == "successive-halving":
        return RungPruner(config.rungs, config.reduction_factor, rung_values=rung_values)
    if config.pruner == "optuna-successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.rungs[0], reduction_factor=config.reduction_factor
        )
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def study_pruner(
    config: StudyConfig, *, rung_values: RungValues | None = None
) -> optuna.pruners.BasePruner:
    """The finite-difference search evaluates the top rung only, with no pruning."""
    if config.sampler.name == FINITE_DIFFERENCE:
        return optuna.pruners.NopPruner()
    return build_pruner(config.fidelity, rung_values=rung_values)
