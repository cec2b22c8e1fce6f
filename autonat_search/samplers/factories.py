"""The study config's sampler and pruner names -> Optuna objects."""

from __future__ import annotations

import optuna

from autonat_search.config import FidelityConfig, SamplerConfig

__all__ = ["build_pruner", "build_sampler"]


def build_sampler(config: SamplerConfig, *, seed: int) -> optuna.samplers.BaseSampler:
    """``seed``: this actor's own sampler seed (see ``execution.trial_loop.actor_seed``)."""
    if config.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if config.name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if config.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def build_pruner(config: FidelityConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.rungs[0], reduction_factor=config.reduction_factor
        )
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    return optuna.pruners.NopPruner()
