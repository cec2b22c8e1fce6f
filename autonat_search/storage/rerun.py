"""Failing a trial whose work was lost, and enqueueing its one re-run.

Used for trials whose heartbeat went stale (as Optuna's heartbeat callback), whose actor
died, or whose worker was told to stop at once. The re-run is a WAITING trial with the same
parameters, tagged ``failed_trial`` and ``retry_history`` in its system attributes like
Optuna's ``RetryHeartbeatStaleTrialCallback`` does, but it inherits only the user attributes
that define it (``records.rerun_user_attrs``), not the failed run's progress or reason.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from autonat_search import records

__all__ = ["RerunFailedTrial", "fail_and_rerun", "fail_trials_of_actor"]

log = logging.getLogger(__name__)


class RerunFailedTrial:
    """Enqueue a re-run of a failed trial, at most ``max_retry`` times per original trial."""

    def __init__(self, max_retry: int = 3) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > self.max_retry:
            log.warning("trial %d failed; not re-run (%d retries)", trial.number, self.max_retry)
            return
        system_attrs: dict[str, Any] = {
            **trial.system_attrs,
            "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
            "retry_history": history,
        }
        study.add_trial(
            optuna.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=records.rerun_user_attrs(trial),
                system_attrs=system_attrs,
            )
        )


def fail_and_rerun(study: optuna.Study, trial_id: int, reason: str, max_retry: int = 3) -> bool:
    """Fail a RUNNING trial with ``reason`` and enqueue its re-run; False (nothing done) when
    it was already finished, by another worker for example."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, records.TRIAL_FAIL_REASON, reason[:500])
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    RerunFailedTrial(max_retry)(study, storage.get_trial(trial_id))
    return True


def fail_trials_of_actor(study: optuna.Study, actor: str, reason: str) -> list[int]:
    """Fail the RUNNING trials an actor recorded as its own, enqueueing their re-runs."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(records.TRIAL_ACTOR) == actor and fail_and_rerun(
            study, trial._trial_id, reason
        ):
            failed.append(trial.number)
    return failed
