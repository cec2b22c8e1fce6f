"""The loop one actor runs: reserve a budget slot, run one trial through ``optimize``, repeat.

The budget counts finished trials (COMPLETE + PRUNED) and must be met exactly across all
workers. Under the study lock a worker fails stale trials (dead workers: their retries are
enqueued), counts finished and RUNNING trials, and starts a trial only if a slot is free;
the new trial is RUNNING (so counted by everyone else) before the lock is released.
Trials run through ``Study.optimize(n_trials=1)``, which keeps their heartbeat.
``run_study_trials`` sets the loop up for one actor: storage, study, sampler, objective.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.errors import TooManyFailures
from autonat_search.execution.noise_floor import ensure_noise_floor
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.progress import log_trial_end, log_trial_start
from autonat_search.execution.trial_artifacts import TrialArtifacts
from autonat_search.samplers import build_study_sampler, study_pruner
from autonat_search.space import build_space
from autonat_search.storage import (
    HeartbeatSettings,
    StudyLock,
    load_study,
    open_storage,
    running_trials_without_heartbeat,
)
from autonat_search.study import finished, state_counts, study_config
from nat_core.pipeline import GeneratorBundle

__all__ = [
    "LoopSummary",
    "WorkerOptions",
    "run_study_trials",
    "run_trial_loop",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """Which study a worker serves, and how (``bundle``: this node's copy of its bundle)."""

    storage_url: str
    study_name: str
    bundle: Path | None = None
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    poll_seconds: float = 2.0


@dataclass
class LoopSummary:
    started: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def add(self, state: TrialState) -> None:
        self.states[state.name] = self.states.get(state.name, 0) + 1


def _start_orphans_clock(study: optuna.Study, storage: RDBStorage) -> None:
    """Give RUNNING trials without any heartbeat one, so that they can go stale.

    Optuna never fails a RUNNING trial that has no heartbeat row. Our trials record one
    before the lock is released, so a trial without one, seen under the lock, belongs to a
    worker that died between creating it and its first heartbeat.
    """
    for trial_id in running_trials_without_heartbeat(storage, study._study_id):
        storage.record_heartbeat(trial_id)


def _reserve(study: optuna.Study, storage: RDBStorage) -> str:
    """``run``, ``wait`` (slots held by running trials) or ``done``; call under the lock."""
    _start_orphans_clock(study, storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    budget = records.read_budget(study)
    counts = state_counts(study)
    done = finished(counts)
    if done >= budget:
        return "done"
    if done + counts[TrialState.RUNNING] >= budget:
        return "wait"
    has_work = getattr(study.sampler, "has_work", None)  # the finite-difference sampler's
    if has_work is not None and not has_work(study):
        return "wait"  # every evaluation it can propose now is running
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
    device_name: str = "this worker",
) -> LoopSummary:
    summary = LoopSummary()
    failures = 0
    ran: list[optuna.trial.FrozenTrial] = []

    def release_then_run(trial: optuna.Trial) -> float:
        # The first heartbeat is written before anyone else may look at this trial; the
        # heartbeat thread of ``optimize`` may not have written one yet.
        storage.record_heartbeat(trial._trial_id)
        lock.release()
        log_trial_start(trial, device_name)
        return objective(trial)

    def record(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran.append(trial)
        log_trial_end(trial)

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


def run_study_trials(
    bundle: GeneratorBundle, options: WorkerOptions, *, device_name: str, stop: threading.Event
) -> LoopSummary:
    """One actor's share of a worker: trials of the study on ``bundle`` until none is left."""
    storage = open_storage(options.storage_url, heartbeat=options.heartbeat)
    stored = load_study(storage, options.study_name)
    config = study_config(stored)
    location = records.read_artifact_store(stored)
    study = optuna.load_study(
        study_name=options.study_name,
        storage=storage,
        sampler=build_study_sampler(config),  # random choices from (seed, trial number)
        pruner=study_pruner(config),
    )
    objective = FidObjective(
        bundle=bundle,
        space=build_space(config.space, steps=config.steps),
        config=config,
        device_name=device_name,
        artifacts=None
        if location is None
        else TrialArtifacts(location, config.samples.seed, config.device.precision),
    )
    lock = StudyLock(options.storage_url, options.study_name)
    ensure_noise_floor(study, bundle, config, lock)  # once per study, by the first worker
    return run_trial_loop(
        study,
        objective,
        lock,
        storage=storage,
        stop=stop,
        poll_seconds=options.poll_seconds,
        device_name=device_name,
    )
