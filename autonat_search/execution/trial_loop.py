"""The loop one actor runs: reserve a budget slot, run one trial, record it, repeat.

The budget counts finished trials (COMPLETE + PRUNED) and must be met exactly across all
workers. Under the study lock a worker counts trials by state (one query) and, if a slot is
free, asks for a trial (an enqueued one first) and records its first heartbeat; the new trial
is RUNNING (so counted by everyone else) before the lock is released. Failing stale trials
(dead workers: their re-runs are enqueued) happens outside the lock, at most once per
heartbeat interval: it only ever turns RUNNING trials into failed ones, which never makes a
count under the lock too high.

Trials run through ask and tell, not ``Study.optimize``, so that this loop owns the
heartbeat (``heartbeat``): a trial whose heartbeat was lost stops at the objective's next
``check_trial_alive()`` and is left to be failed and re-run; a result is told only to a trial
still RUNNING, so a trial failed by another worker is never also recorded by this one. The
storage retries through database outages (``storage.resilient``), so a computed value waits
for the database instead of being lost.
``run_study_trials`` sets the loop up for one actor: storage, study, sampler, objective.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.config import StudyConfig
from autonat_search.errors import StorageError, TooManyFailures
from autonat_search.execution.heartbeat import (
    HeartbeatKeeper,
    HeartbeatLost,
    TrialInterrupted,
    keeping_heartbeat,
)
from autonat_search.execution.noise_floor import ensure_noise_floor
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.pending_results import PendingResult, keep_pending, record_pending
from autonat_search.execution.progress import log_trial_end, log_trial_start
from autonat_search.execution.trial_artifacts import TrialArtifacts
from autonat_search.execution.trial_tell import tell_running
from autonat_search.samplers import build_study_sampler, study_pruner
from autonat_search.space import build_space, space_distributions
from autonat_search.storage import (
    DEFAULT_MAX_WAIT,
    BudgetStanding,
    HeartbeatSettings,
    ResilientRDBStorage,
    StudyLock,
    budget_standing,
    fail_and_rerun,
    load_study,
    open_storage,
    redact,
    rung_values,
    running_trials_without_heartbeat,
    storage_url_of,
    trial_state,
)
from autonat_search.study import study_config
from nat_core.pipeline import GeneratorBundle

__all__ = [
    "LoopSummary",
    "WorkerOptions",
    "run_study_trials",
    "run_trial_loop",
    "worker_study",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """Which study a worker serves, and how (``bundle``: this node's copy of its bundle;
    ``batch_size``: this node's samples per forward pass, default the study file's;
    ``storage_wait``: seconds a database outage is waited out)."""

    storage_url: str
    study_name: str
    bundle: Path | None = None
    batch_size: int | None = None
    storage_wait: float = DEFAULT_MAX_WAIT
    poll_seconds: float = 2.0


@dataclass
class LoopSummary:
    started: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.states[outcome] = self.states.get(outcome, 0) + 1


def _maintain(study: optuna.Study, storage: ResilientRDBStorage) -> None:
    """Fail stale trials (enqueueing their re-runs), and start the clock of orphans.

    Optuna never fails a RUNNING trial that has no heartbeat row. Ours record one before the
    lock is released, so a trial without one belongs to a worker that died between creating
    it and its first heartbeat, or to one creating it right now: a heartbeat recorded for the
    latter changes nothing.
    """
    for trial_id in running_trials_without_heartbeat(storage, study._study_id):
        storage.record_heartbeat_retrying(trial_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _reserve(study: optuna.Study, storage: ResilientRDBStorage) -> tuple[str, BudgetStanding]:
    """``run``, ``wait`` (slots held by running trials) or ``done``, and the count it was
    decided on; call under the lock."""
    standing = budget_standing(storage, study)
    if standing.spent:
        return "done", standing
    if not standing.has_free_slot:
        return "wait", standing
    has_work = getattr(study.sampler, "has_work", None)  # the finite-difference sampler's
    if has_work is not None and not has_work(study):
        return "wait", standing  # every evaluation it can propose now is running
    return "run", standing


def _ask(study: optuna.Study, storage: ResilientRDBStorage, *, waiting: bool) -> optuna.Trial:
    """A RUNNING trial with its first heartbeat: an enqueued one if ``waiting`` (the count
    under the lock found one), else a new one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... used with optimize"
        trial = study.ask() if waiting else _new_trial(study)
    storage.record_heartbeat_retrying(trial._trial_id)
    return trial


def _new_trial(study: optuna.Study) -> optuna.Trial:
    """``study.ask()`` without its first step, which reads every unfinished trial of the
    study (with all their parameters and attributes) to find a WAITING one: the rest of what
    Optuna 5.0's ``ask`` does, a new trial and the study's per-trial cache of trials cleared.
    A trial enqueued after the count is popped by the next ask."""
    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, study._storage.create_new_trial(study._study_id))


def _tell(
    study: optuna.Study,
    storage: ResilientRDBStorage,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
) -> str:
    """Record the outcome, unless another worker failed the trial meanwhile."""
    try:
        told = tell_running(
            study, trial._trial_id, state, value if state == TrialState.COMPLETE else None
        )
    except UpdateFinishedTrialError:
        told = None  # failed by another worker between tell_running's read and its write
    if told is not None:
        log_trial_end(told)
        return state.name
    current = trial_state(storage, trial._trial_id)
    log.warning(
        "trial %d was %s by another worker (its heartbeat went stale); this worker's %s "
        "is not recorded",
        trial.number,
        "failed" if current == TrialState.FAIL else current.name,
        state.name,
    )
    return "LOST"


def _run_one(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float],
    storage: ResilientRDBStorage,
    abort: threading.Event,
) -> str:
    """Run and record one trial; its outcome: a state name, ``LOST`` or ``INTERRUPTED``."""
    keeper = HeartbeatKeeper(
        storage,
        trial._trial_id,
        interval=float(storage.heartbeat_interval or 30),
        grace_period=float(storage.grace_period or 120),
        abort=abort,
    )
    with keeping_heartbeat(keeper):
        value: float | None = None
        try:
            value = objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except HeartbeatLost as error:
            log.warning("trial %d stopped: %s", trial.number, error)
            return "LOST"
        except TrialInterrupted as error:
            reason = f"interrupted: {error}; re-run elsewhere"
            log.warning("trial %d %s", trial.number, reason)
            fail_and_rerun(study, trial._trial_id, reason)
            return "INTERRUPTED"
        except UpdateFinishedTrialError:
            return _tell(study, storage, trial, TrialState.FAIL, None)  # logs why not recorded
        except StorageError:
            raise  # the database stayed away: the trial goes stale and is re-run elsewhere
        except Exception as error:  # recorded as FAIL with its reason
            log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
            if records.TRIAL_FAIL_REASON not in trial.user_attrs:  # the objective's own
                records.write_fail_reason(trial, f"{type(error).__name__}: {error}")
            state = TrialState.FAIL
        try:
            return _tell(study, storage, trial, state, value)
        except StorageError as error:
            if state == TrialState.FAIL:
                raise
            raise _kept(study, storage, trial, state, value, error) from error


def _kept(
    study: optuna.Study,
    storage: ResilientRDBStorage,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    error: StorageError,
) -> StorageError:
    """Keep a result the database could not take (``pending_results``); the error to raise."""
    result = PendingResult(
        storage=redact(storage_url_of(storage)),
        study_name=study.study_name,
        trial_id=trial._trial_id,
        trial_number=trial.number,
        state=state.name,
        value=value,
    )
    path = keep_pending(result)
    return StorageError(
        f"{error}; the result of {result.describe()} is kept in {path} and recorded when a "
        "worker for this study next starts on this machine"
    )


def run_trial_loop(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    lock: StudyLock,
    *,
    storage: ResilientRDBStorage,
    stop: threading.Event,
    abort: threading.Event | None = None,
    actor: str | None = None,
    poll_seconds: float = 2.0,
    max_consecutive_failures: int = 5,
    device_name: str = "this worker",
) -> LoopSummary:
    """Trials until the budget is spent or ``stop`` is set; ``abort`` interrupts the running
    trial (failed and re-run elsewhere). ``actor`` is recorded on every trial this loop runs."""
    summary = LoopSummary()
    abort = abort or threading.Event()
    failures = 0
    maintain_every = float(storage.heartbeat_interval or 30)
    last_maintained = -float("inf")
    while not stop.is_set() and not abort.is_set():
        if time.monotonic() - last_maintained >= maintain_every:
            _maintain(study, storage)
            last_maintained = time.monotonic()
        trial = None
        with lock.held():
            decision, standing = _reserve(study, storage)
            if decision == "run":
                trial = _ask(study, storage, waiting=standing.waiting > 0)
        if decision == "done":
            break
        if trial is None:
            stop.wait(poll_seconds)
            last_maintained = -float("inf")  # slots held by running trials: any stale?
            continue
        if actor is not None:
            records.write_actor(trial, actor)
        summary.started += 1
        log_trial_start(trial, device_name)
        outcome = _run_one(study, trial, objective, storage, abort)
        summary.add(outcome)
        failures = failures + 1 if outcome == TrialState.FAIL.name else 0
        if failures >= max_consecutive_failures:
            raise TooManyFailures(
                f"{failures} trials in a row failed on this worker; see the trials' "
                "fail_reason and the worker log"
            )
    return summary


def worker_study(
    storage: ResilientRDBStorage, study_name: str, config: StudyConfig
) -> optuna.Study:
    """The study as a worker runs it: its sampler's random choices from (seed, trial number),
    told the study's search space; its pruner reading a rung's values in one query."""
    space = build_space(config.space, steps=config.steps)
    return optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=build_study_sampler(config, search_space=space_distributions(space)),
        pruner=study_pruner(config, rung_values=functools.partial(rung_values, storage)),
    )


def run_study_trials(
    bundle: GeneratorBundle,
    options: WorkerOptions,
    *,
    device_name: str,
    stop: threading.Event,
    abort: threading.Event | None = None,
    actor: str | None = None,
) -> LoopSummary:
    """One actor's share of a worker: trials of the study on ``bundle`` until none is left."""
    first = open_storage(options.storage_url, max_wait=options.storage_wait)
    stored = load_study(first, options.study_name)
    config = study_config(stored)
    location = records.read_artifact_store(stored)
    if options.batch_size is not None:
        config = config.with_batch_size(options.batch_size)
    storage = open_storage(
        options.storage_url,
        heartbeat=HeartbeatSettings(
            interval=config.heartbeat.interval, grace_period=config.heartbeat.grace_period
        ),
        max_wait=options.storage_wait,
    )
    study = worker_study(storage, options.study_name, config)
    objective = FidObjective(
        bundle=bundle,
        space=build_space(config.space, steps=config.steps),
        config=config,
        device_name=device_name,
        artifacts=None
        if location is None
        else TrialArtifacts(location, config.samples.seed, config.device.precision),
    )
    lock = StudyLock(options.storage_url, options.study_name, max_wait=options.storage_wait)
    record_pending(study, storage, lock)  # results kept through an outage
    ensure_noise_floor(study, bundle, config, lock)  # once per study, by the first worker
    return run_trial_loop(
        study,
        objective,
        lock,
        storage=storage,
        stop=stop,
        abort=abort,
        actor=actor,
        poll_seconds=options.poll_seconds,
        device_name=device_name,
    )
