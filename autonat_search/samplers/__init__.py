"""The search methods: Optuna samplers and pruners built from a study's config, the
reference's finite-difference search, per-trial seeding and successive halving on the
study's own rungs."""

from autonat_search.samplers.factories import (
    build_pruner,
    build_sampler,
    build_study_sampler,
    study_pruner,
)
from autonat_search.samplers.finite_difference import FiniteDifferenceSampler
from autonat_search.samplers.known_space import KnownSpaceTPESampler
from autonat_search.samplers.rung_pruner import RungPruner
from autonat_search.samplers.trial_seeded import TrialSeededSampler, trial_seed

__all__ = [
    "FiniteDifferenceSampler",
    "KnownSpaceTPESampler",
    "RungPruner",
    "TrialSeededSampler",
    "build_pruner",
    "build_sampler",
    "build_study_sampler",
    "study_pruner",
    "trial_seed",
]
