"""A trial's tell that reads the trial once, where Optuna 5.0's ``Study.tell`` reads it twice.

``Study.tell`` reads the trial whole (six queries: the trial and each of its collections) to
check that it is RUNNING and to hand it to the sampler's ``after_trial``, records the state
and values, then reads it whole again to return it. The trial loop also needs the stored
state before it tells (a trial another worker failed is not told) and the told trial for its
log line. ``tell_running`` reads the trial once for all three and otherwise does what
``Study.tell`` does with the states the loop tells: a COMPLETE value must be a number that is
not NaN (``ValueError``, nothing recorded); a PRUNED trial takes its last intermediate value
as its value when that is a number; the sampler's ``after_trial`` gets the trial as read, and
the state is recorded even when ``after_trial`` raises. (``Study.tell`` also filters the study
for Optuna's ``WilcoxonPruner``, which the service never builds.)

Tested against ``Study.tell`` on twin studies (``tests/autonat_search/execution``).
"""

from __future__ import annotations

import copy
import datetime
import math

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["tell_running"]


def tell_running(
    study: optuna.Study, trial_id: int, state: TrialState, value: float | None = None
) -> FrozenTrial | None:
    """Finish a RUNNING trial with ``state`` (and ``value``, for COMPLETE only); the trial as
    told, or None (nothing recorded) if it was no longer RUNNING when read. A trial finished
    by someone else between the read and the write raises Optuna's
    ``UpdateFinishedTrialError``."""
    if state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        raise ValueError(f"cannot tell a trial {state.name}")
    if (value is None) == (state == TrialState.COMPLETE):
        raise ValueError(f"a {state.name} trial is told {'no' if value is None else 'a'} value")
    study._thread_local.cached_all_trials = None  # as Study.tell: the trial list has changed
    trial = study._storage.get_trial(trial_id)
    if trial.state != TrialState.RUNNING:
        return None
    values = _values(trial, state, value)
    try:
        study.sampler.after_trial(study, trial, state, values)
    finally:
        study._storage.set_trial_state_values(trial_id, state, values)
    told = copy.copy(trial)
    told.state = state
    told.values = values
    told.datetime_complete = datetime.datetime.now()
    return told


def _values(trial: FrozenTrial, state: TrialState, value: float | None) -> list[float] | None:
    if state == TrialState.COMPLETE:
        assert value is not None
        if math.isnan(value):
            raise ValueError(f"trial {trial.number}: the value {value} is not acceptable")
        return [float(value)]
    if state == TrialState.PRUNED and trial.last_step is not None:
        last = trial.intermediate_values[trial.last_step]
        return None if math.isnan(last) else [float(last)]
    return None
