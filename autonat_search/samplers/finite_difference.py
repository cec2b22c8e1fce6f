"""The reference's finite-difference search as an Optuna sampler (``sampler: finite-difference``).

Every trial is one evaluation of the search, tagged with the user attributes ``fd_update``
(k) and ``fd_coordinate`` (-1 for the centre x_k, i for the probe of number i; their names
are part of the study record, ``records``). The search's
state is derived from those tags and the FIDs of the study's trials, so any worker on any
node takes the next evaluation with no shared mutable state:

* x_0 is the reference's initial schedule; update k is complete once its centre and all
  4T-2 probes have a COMPLETE trial; then x_{k+1} and the momentum buffer follow from the
  FIDs (``finite_difference_rule``), and update k+1 begins.
* Of the current update, every evaluation that has no COMPLETE trial and none RUNNING or
  WAITING is pending; a new trial takes the first (the centre, then probes in order). The
  centre and the probes do not depend on each other, so all 4T-1 run in parallel. A failed
  or pruned evaluation is pending again: it is re-run, never dropped.
* When nothing is pending, ``has_work`` is False: the trial loop then waits (under its study
  lock, which also keeps two workers from taking the same evaluation) instead of starting
  a duplicate.

Trials outside the search (a warm start other than the reference's initial schedule) are
evaluated and recorded, but carry no tag and do not enter the search. The sampler has no
random choices. It evaluates every trial at the study's top rung with no pruning, as the
reference does (``trial_rungs``; the worker gives it a ``NopPruner``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from autonat_search import records
from autonat_search.config import StudyConfig
from autonat_search.samplers.finite_difference_rule import (
    FiniteDifferenceRule,
    FiniteDifferenceSettings,
    reference_rule,
)
from autonat_search.spaces.raw import RawStepSpace

log = logging.getLogger(__name__)

FINITE_DIFFERENCE = "finite-difference"
UPDATE_ATTR = records.TRIAL_FD_UPDATE
COORDINATE_ATTR = records.TRIAL_FD_COORDINATE
CENTRE = -1
_ACTIVE = (TrialState.RUNNING, TrialState.WAITING)


def trial_rungs(config: StudyConfig) -> tuple[int, ...]:
    """The rungs a trial is evaluated at: only the top one for the finite-difference search."""
    if config.sampler.name == FINITE_DIFFERENCE:
        return (config.fidelity.rungs[-1],)
    return config.fidelity.rungs


def study_notes(config: StudyConfig) -> list[str]:
    if config.sampler.name != FINITE_DIFFERENCE:
        return []
    return [
        f"finite-difference search: every trial is evaluated at {config.fidelity.rungs[-1]} "
        "samples with no pruning, whatever the fidelity section says; warm starts other than "
        "reference-initial are evaluated beside the search, not in it"
    ]


@dataclass(frozen=True)
class Progress:
    """Where the search stands, derived from the trial history."""

    update: int  # the current update k
    iterates: list[np.ndarray]  # x_0 .. x_k
    momentum: np.ndarray | None  # the buffer after update k-1 (None before the first)
    done: frozenset[int]  # coordinates of update k with a COMPLETE trial
    active: frozenset[int]  # coordinates of update k with a RUNNING or WAITING trial
    size: int  # 4T-2

    @property
    def point(self) -> np.ndarray:
        return self.iterates[-1]

    @property
    def pending(self) -> list[int]:
        taken = self.done | self.active
        return [c for c in range(CENTRE, self.size) if c not in taken]


def tag_of(trial: FrozenTrial) -> tuple[int, int] | None:
    update, coordinate = trial.user_attrs.get(UPDATE_ATTR), trial.user_attrs.get(COORDINATE_ATTR)
    if update is None or coordinate is None:
        return None
    return int(update), int(coordinate)


def derive_progress(trials: Sequence[FrozenTrial], rule: FiniteDifferenceRule) -> Progress:
    fids: dict[tuple[int, int], float] = {}
    active: set[tuple[int, int]] = set()
    for trial in sorted(trials, key=lambda t: t.number):
        tag = tag_of(trial)
        if tag is None:
            continue
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            fids.setdefault(tag, float(trial.value))  # a duplicate (no lock) counts once
        elif trial.state in _ACTIVE:
            active.add(tag)
    iterates, buffer, k = [rule.start], None, 0
    coordinates = range(CENTRE, rule.size)
    while all((k, c) in fids for c in coordinates):
        x, buffer = rule.update(
            iterates[-1], buffer, fids[(k, CENTRE)], [fids[(k, i)] for i in range(rule.size)]
        )
        iterates.append(x)
        k += 1
    return Progress(
        update=k,
        iterates=iterates,
        momentum=buffer,
        done=frozenset(c for c in coordinates if (k, c) in fids),
        active=frozenset(c for c in coordinates if (k, c) in active),
        size=rule.size,
    )


class FiniteDifferenceSampler(BaseSampler):
    """Proposes the next evaluation of the reference's search (see the module note)."""

    def __init__(
        self,
        space: RawStepSpace,
        settings: FiniteDifferenceSettings | None = None,
    ) -> None:
        self.space = space
        settings = settings or FiniteDifferenceSettings()
        self.rule = reference_rule(space.steps, space.ranges, settings)
        self._index = {name: i for i, name in enumerate(space.names)}
        self._points: dict[int, np.ndarray] = {}

    @classmethod
    def for_study(cls, config: StudyConfig) -> FiniteDifferenceSampler:
        space = RawStepSpace(steps=config.steps, ranges=config.space.ranges)
        return cls(space, FiniteDifferenceSettings(grad_clip=config.sampler.grad_clip))

    # -- the search's state ----------------------------------------------------------------

    def progress(self, study: optuna.Study) -> Progress:
        return derive_progress(study.get_trials(deepcopy=False), self.rule)

    def has_work(self, study: optuna.Study) -> bool:
        """Whether a new trial has something to evaluate (a waiting trial or a pending one)."""
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return True
        return bool(derive_progress(trials, self.rule).pending)

    def point_of(self, progress: Progress, update: int, coordinate: int) -> np.ndarray:
        x = progress.iterates[update]
        return x.copy() if coordinate == CENTRE else self.rule.probe(x, coordinate)

    # -- Optuna's sampler interface ------------------------------------------------------

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        progress = self.progress(study)
        tag = tag_of(trial)
        if tag is not None:  # a retry of a trial whose worker died: the same evaluation
            self._points[trial._trial_id] = self.point_of(progress, *tag)
            return
        fixed = trial.system_attrs.get("fixed_params")
        if fixed is not None:  # an enqueued trial: in the search only if it is the centre
            vector = [fixed.get(name) for name in self.space.names]
            if CENTRE in progress.pending and vector == progress.point.tolist():
                self._tag(study, trial, progress.update, CENTRE)
            self._points[trial._trial_id] = progress.point
            return
        pending = progress.pending
        if pending:
            coordinate = pending[0]
        else:  # only without the trial loop's lock and ``has_work`` check
            coordinate = min(progress.active)
            log.warning(
                "finite-difference: nothing left to evaluate in update %d; trial %d repeats "
                "coordinate %d (run workers through the trial loop to avoid this)",
                progress.update,
                trial.number,
                coordinate,
            )
        self._tag(study, trial, progress.update, coordinate)
        self._points[trial._trial_id] = self.point_of(progress, progress.update, coordinate)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if param_name not in self._index:
            raise ValueError(
                f"the finite-difference sampler proposes the raw per-step numbers "
                f"({self.space.names[0]} ...); got a parameter named {param_name!r}"
            )
        point = self._points.get(trial._trial_id)
        if point is None:
            point = self.progress(study).point
        return float(point[self._index[param_name]])

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._points.pop(trial._trial_id, None)

    def _tag(self, study: optuna.Study, trial: FrozenTrial, update: int, coordinate: int) -> None:
        # Optuna has no public way for a sampler to annotate the trial it is about to run.
        storage = study._storage
        for key, value in ((UPDATE_ATTR, update), (COORDINATE_ATTR, coordinate)):
            storage.set_trial_user_attr(trial._trial_id, key, value)
            trial.user_attrs[key] = value  # ``trial`` is the running Trial's cached copy
