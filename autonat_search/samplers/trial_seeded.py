"""Reproducible sampling: every trial's random choices come from (sampler seed, trial number).

Optuna's samplers take one seed at construction and then draw from their own generator, so
what a trial gets depends on how many draws came before it in that process: two runs of one
study differ as soon as two actors interleave, and a seed mixed with per-actor entropy makes
every run different. ``TrialSeededSampler`` builds a fresh inner sampler for each trial,
seeded with ``derive_seed(seed, "sampler", trial.number)``, through the samplers' public
constructors only. Everything an inner sampler knows besides its seed comes from the trial
history in the storage (TPE, random; CMA-ES keeps its optimizer in trial attributes and
re-seeds it from its generator and the trial number), so one actor re-running a study file
proposes the same trials, and no two trials share a random state. What is lost: GP's
in-memory cache of kernel parameters (a warm start of its fit; it is then fitted from the
default start each trial, which also makes it independent of which actor ran before).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from nat_core.seeding import derive_seed

__all__ = ["TrialSeededSampler", "trial_seed"]


def trial_seed(seed: int, trial_number: int) -> int:
    """The seed of one trial's sampler (32 bits: Optuna seeds NumPy's ``RandomState``)."""
    return derive_seed(seed, "sampler", trial_number, bits=32)


class TrialSeededSampler(BaseSampler):
    """Delegates to ``factory(trial_seed(seed, trial.number))``, built anew for each trial."""

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self.factory = factory
        self.seed = seed
        self._inner: dict[int, BaseSampler] = {}  # trial number -> its sampler

    def inner(self, trial: FrozenTrial) -> BaseSampler:
        sampler = self._inner.get(trial.number)
        if sampler is None:
            sampler = self._inner[trial.number] = self.factory(trial_seed(self.seed, trial.number))
        return sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner.pop(trial.number, None)  # a fresh generator for every (re)start
        self.inner(trial).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        sampler = self._inner.pop(trial.number, None)
        if sampler is None:
            sampler = self.factory(trial_seed(self.seed, trial.number))
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: each trial's generator is derived from its number."""
