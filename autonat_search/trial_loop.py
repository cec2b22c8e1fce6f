"""The loop one actor runs: reserve a budget slot, run one trial through ``optimize``, repeat.

The budget counts finished trials (COMPLETE + PRUNED) and must be met exactly across all
workers. Under the study lock a worker fails stale trials (dead workers: their retries are
enqueued), counts finished and RUNNING trials, and starts a trial only if a slot is free;
the new trial is RUNNING (so counted by everyone else) before the lock is released.
Trials run through ``Study.optimize(n_trials=1)``, which keeps their heartbeat.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from autonat_search.errors import AutonatError
from autonat_search.storage import StudyLock
from autonat_search.study import BUDGET_ATTR, finished, state_counts

log = logging.getLogger(__name__)


@dataclass
class LoopSummary:
    started: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def add(self, state: TrialState) -> None:
        self.states[state.name] = self.states.get(state.name, 0) + 1


class TooManyFailures(AutonatError):
    """Every recent trial failed: something is wrong with this worker, not the strategies."""


_ORPHANS = sqlalchemy.text(
    "SELECT t.trial_id FROM trials t WHERE t.study_id = :study AND t.state = 'RUNNING' "
    "AND NOT EXISTS (SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)"
)


def _start_orphans_clock(study: optuna.Study, storage: RDBStorage) -> None:
    """Give RUNNING trials without any heartbeat one, so that they can go stale.

    Optuna never fails a RUNNING trial that has no heartbeat row. Our trials record one
    before the lock is released, so a trial without one, seen under the lock, belongs to a
    worker that died between creating it and its first heartbeat.
    """
    with storage.engine.connect() as connection:
        orphans = connection.execute(_ORPHANS, {"study": study._study_id}).scalars().all()
    for trial_id in orphans:
        storage.record_heartbeat(trial_id)


def _reserve(study: optuna.Study, storage: RDBStorage) -> str:
    """``run``, ``wait`` (slots held by running trials) or ``done``; call under the lock."""
    _start_orphans_clock(study, storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    budget = int(study.user_attrs[BUDGET_ATTR])
    counts = state_counts(study)
    done = finished(counts)
    if done >= budget:
        return "done"
    if done + counts[TrialState.RUNNING] >= budget:
        return "wait"
    return "run"


def run_trial_loop(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    lock: StudyLock,
    *,
    storage: RDBStorage,
    stop: threading.Event,
    poll_seconds: float = 2.0,
    max_consecutive_failures: int = 5,
) -> LoopSummary:
    summary = LoopSummary()
    failures = 0
    ran: list[optuna.trial.FrozenTrial] = []

    def release_then_run(trial: optuna.Trial) -> float:
        # The first heartbeat is written before anyone else may look at this trial; the
        # heartbeat thread of ``optimize`` may not have written one yet.
        storage.record_heartbeat(trial._trial_id)
        lock.release()
        return objective(trial)

    def record(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran.append(trial)

    while not stop.is_set():
        lock.acquire()
        try:
            decision = _reserve(study, storage)
            if decision == "run":
                study.optimize(
                    release_then_run,
                    n_trials=1,
                    catch=(Exception,),
                    callbacks=[record],
                    gc_after_trial=False,
                )
        finally:
            lock.release()
        if decision == "done":
            break
        if decision == "wait":
            stop.wait(poll_seconds)
            continue
        summary.started += 1
        state = ran[-1].state
        summary.add(state)
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= max_consecutive_failures:
            raise TooManyFailures(
                f"{failures} trials in a row failed on this worker; see the trials' "
                "fail_reason and the worker log"
            )
    return summary
