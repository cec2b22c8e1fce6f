"""The search methods: Optuna samplers and pruners built from a study's config."""

from autonat_search.samplers.factories import build_pruner, build_sampler

__all__ = ["build_pruner", "build_sampler"]
