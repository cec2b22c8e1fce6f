"""Multivariate TPE told its search space instead of inferring it for every trial.

TPE's relative search space is the intersection of the distributions of every finished
trial. Inferring it reads every unfinished trial whole from the storage and scans the
history; the cache that makes the scan incremental lives in the sampler, which
``TrialSeededSampler`` builds anew for each trial. With 8 workers the read alone is 8 running
trials of 30 parameters and about 40 attributes, for every trial.

In the service every trial suggests the same parameters with the same distributions (its
spaces have no conditional parameters; warm starts and re-runs are suggested through the same
space), so the intersection is the whole space as soon as one trial has finished. Before
that, TPE samples at random either way: with fewer finished trials than its start-up count
its relative sampling returns nothing. So the trials are the same, a read fewer.

It also reads the study's trials once per trial where TPE reads them twice: once (through the
study's per-trial cache) to count the finished ones, and again, bypassing the cache, for its
constant liar, which needs the running ones. The cache already holds them, read a moment
earlier for the same trial, so the second read goes to the cache too. With 8 workers each
read is 8 running trials of 30 parameters and about 40 attributes (7 queries).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["KnownSpaceTPESampler"]


class KnownSpaceTPESampler(optuna.samplers.TPESampler):
    """``TPESampler(multivariate=True, **kwargs)`` whose relative search space is
    ``search_space``, ordered and filtered as TPE orders and filters the inferred one (sorted
    by name, single-valued distributions left out)."""

    def __init__(self, search_space: Mapping[str, BaseDistribution], **kwargs: Any) -> None:
        if kwargs.get("group"):
            raise ValueError("KnownSpaceTPESampler: group=True decomposes the inferred space")
        super().__init__(multivariate=True, **kwargs)
        self.search_space = {
            name: distribution
            for name, distribution in sorted(search_space.items())
            if not distribution.single()
        }

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self.search_space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return super().sample_relative(_CachedReads(study), trial, search_space)  # type: ignore[arg-type]


class _CachedReads:
    """``study`` whose trials, while TPE samples one trial, are read through the per-trial
    cache (``Study._get_trials(use_cache=True)``, which Optuna 5.0's ``ask`` and ``tell``
    clear), however TPE asks for them."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        return self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=True)
