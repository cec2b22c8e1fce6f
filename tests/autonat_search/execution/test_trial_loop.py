"""The budget across processes: real worker processes on PostgreSQL and the embedded store."""

import multiprocessing
import os
import random
import threading
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search.errors import TooManyFailures
from autonat_search.execution.trial_loop import run_trial_loop
from autonat_search.records import STUDY_BUDGET
from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

FAST = HeartbeatSettings(interval=1, grace_period=3, max_retry=3)


def _new_study(url: str, budget: int) -> str:
    name = f"loop-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat=FAST))
    study.set_user_attr(STUDY_BUDGET, budget)
    return name


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    time.sleep(random.uniform(0.02, 0.1))
    if trial.number % 5 == 3:
        raise RuntimeError("out of memory (simulated)")
    trial.report(x, step=1)
    if trial.number % 4 == 1:
        raise optuna.TrialPruned()
    return x


def _worker(url: str, name: str, seed: int) -> None:
    random.seed(seed)
    storage = open_storage(url, heartbeat=FAST)
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    run_trial_loop(
        study,
        _objective,
        StudyLock(url, name),
        storage=storage,
        stop=threading.Event(),
        poll_seconds=0.05,
        max_consecutive_failures=50,
    )


def _dying_worker(url: str, name: str) -> None:
    storage = open_storage(url, heartbeat=FAST)
    study = optuna.load_study(study_name=name, storage=storage)

    def die(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.5, 0.5)
        os._exit(17)  # the process disappears mid-trial, leaving it RUNNING

    run_trial_loop(study, die, StudyLock(url, name), storage=storage, stop=threading.Event())


def test_three_processes_meet_the_budget_exactly(storage_url):
    name = _new_study(storage_url, budget=15)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(storage_url, name, s)) for s in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
        assert w.exitcode == 0
    trials = optuna.load_study(study_name=name, storage=open_storage(storage_url)).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 15
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert len({t.number for t in trials}) == len(trials)
    assert states.count(TrialState.PRUNED) > 0  # pruned trials count toward the budget
    assert states.count(TrialState.FAIL) > 0  # failed ones are recorded and do not


def test_a_dead_workers_trial_is_failed_and_rerun(storage_url):
    name = _new_study(storage_url, budget=3)
    context = multiprocessing.get_context("spawn")
    dying = context.Process(target=_dying_worker, args=(storage_url, name))
    dying.start()
    dying.join(timeout=60)
    assert dying.exitcode == 17
    study = optuna.load_study(study_name=name, storage=open_storage(storage_url, heartbeat=FAST))
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    time.sleep(FAST.grace_period + 1)
    _worker(storage_url, name, seed=1)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == trials[0].number]
    assert len(retried) == 1 and retried[0].params == {"x": 0.5}
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3


def test_raising_the_budget_lets_workers_continue(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _new_study(url, budget=2)
    _worker(url, name, seed=3)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    study.set_user_attr(STUDY_BUDGET, 4)
    _worker(url, name, seed=4)
    finished = [
        t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    assert len(finished) == 4


def test_a_worker_whose_trials_all_fail_stops(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _new_study(url, budget=5)
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)

    def broken(trial: optuna.Trial) -> float:
        raise RuntimeError("CUDA error (simulated)")

    with pytest.raises(TooManyFailures, match="3 trials in a row failed"):
        run_trial_loop(
            study,
            broken,
            StudyLock(url, name),
            storage=storage,
            stop=threading.Event(),
            max_consecutive_failures=3,
        )
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3


def test_stop_event_prevents_new_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _new_study(url, budget=100)
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    stop = threading.Event()

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 2:
            stop.set()  # as a SIGTERM handler would, mid-trial
        return trial.suggest_float("x", 0, 1)

    summary = run_trial_loop(study, objective, StudyLock(url, name), storage=storage, stop=stop)
    assert summary.started == 3
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


def test_a_trial_left_running_without_any_heartbeat_is_rerun(storage_url):
    name = _new_study(storage_url, budget=2)
    study = optuna.load_study(study_name=name, storage=open_storage(storage_url, heartbeat=FAST))
    orphan = study.ask()  # RUNNING, never a heartbeat: a worker died right after creating it
    orphan.suggest_float("x", 0.25, 0.25)
    _worker(storage_url, name, seed=2)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert any(t.system_attrs.get("failed_trial") == 0 for t in trials[1:])
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 2
    assert TrialState.RUNNING not in [t.state for t in trials]


def test_a_trial_failed_by_another_worker_just_before_its_tell_is_not_recorded(tmp_path):
    from autonat_search.execution.trial_loop import _tell
    from autonat_search.storage import fail_and_rerun

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="race", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    real_after_trial = study.sampler.after_trial

    def failed_first(*args, **kwargs):  # the state was RUNNING when read, FAIL at the write
        fail_and_rerun(study, trial._trial_id, "heartbeat stale")
        return real_after_trial(*args, **kwargs)

    study.sampler.after_trial = failed_first  # type: ignore[method-assign]
    assert _tell(study, storage, trial, TrialState.COMPLETE, 0.5) == "LOST"
    assert study.get_trials()[0].state == TrialState.FAIL


def test_an_enqueued_trial_runs_first_and_new_ones_follow(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _new_study(url, budget=3)
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=FAST))
    study.enqueue_trial({"x": 0.125})
    _worker(url, name, seed=1)
    trials = study.get_trials()
    assert trials[0].params == {"x": 0.125} and trials[0].state == TrialState.COMPLETE
    assert [t.state for t in trials[1:]] == [TrialState.PRUNED, TrialState.COMPLETE]
