"""The finite-difference search shared by worker processes on PostgreSQL, through the trial loop."""

import multiprocessing
import os
import random
import threading
import time
import uuid

import numpy as np
import optuna
from fd_oracle import WIDE, quadratic, spec_search
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.execution.trial_loop import run_trial_loop
from autonat_search.samplers.finite_difference import (
    COORDINATE_ATTR,
    UPDATE_ATTR,
    FiniteDifferenceSampler,
)
from autonat_search.spaces.raw import RawStepSpace
from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

FAST = HeartbeatSettings(interval=1, grace_period=3, max_retry=3)
STEPS = 2
SIZE = 4 * STEPS - 2
SPACE = RawStepSpace(steps=STEPS, ranges=WIDE)
F = quadratic(STEPS, seed=7)


def _new_study(url: str, budget: int) -> str:
    name = f"fd-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat=FAST))
    records.write_budget(study, budget)
    return name


def _loop(url: str, name: str, objective) -> None:
    storage = open_storage(url, heartbeat=FAST)
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=FiniteDifferenceSampler(SPACE)
    )
    run_trial_loop(
        study,
        objective,
        StudyLock(url, name),
        storage=storage,
        stop=threading.Event(),
        poll_seconds=0.05,
    )


def _slow_quadratic(trial: optuna.Trial) -> float:
    value = F(SPACE.suggest(trial).to_vector())
    trial.set_user_attr("pid", os.getpid())
    time.sleep(random.uniform(0.1, 0.3))
    return value


def _worker(url: str, name: str, seed: int) -> None:
    random.seed(seed)
    _loop(url, name, _slow_quadratic)


def _dies_on_coordinate_2(trial: optuna.Trial) -> float:
    value = F(SPACE.suggest(trial).to_vector())
    if trial.user_attrs[COORDINATE_ATTR] == 2:
        os._exit(17)  # the process disappears mid-trial, leaving it RUNNING
    return value


def _dying_worker(url: str, name: str) -> None:
    _loop(url, name, _dies_on_coordinate_2)


def _tag(trial: optuna.trial.FrozenTrial) -> tuple[int, int]:
    return trial.user_attrs[UPDATE_ATTR], trial.user_attrs[COORDINATE_ATTR]


def _vector(trial: optuna.trial.FrozenTrial) -> np.ndarray:
    return np.array([trial.params[name] for name in SPACE.names])


def test_two_processes_complete_updates_evaluating_each_once(postgres_url):
    updates = 2
    name = _new_study(postgres_url, budget=updates * (SIZE + 1) + 1)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(postgres_url, name, s)) for s in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    trials = optuna.load_study(study_name=name, storage=open_storage(postgres_url)).trials
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    expected_tags = [(k, c) for k in range(updates) for c in range(-1, SIZE)] + [(updates, -1)]
    assert sorted(_tag(t) for t in trials) == expected_tags  # each evaluation exactly once
    points, iterates = spec_search(F, STEPS, updates)
    for trial in trials:
        k, c = _tag(trial)
        expected = iterates[k] if k == updates else points[k * (SIZE + 1) + c + 1]
        np.testing.assert_array_equal(_vector(trial), expected)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    overlapping = [
        (a.number, b.number)
        for a in trials
        for b in trials
        if a.number < b.number
        and _tag(a)[0] == _tag(b)[0]
        and a.datetime_start < b.datetime_complete
        and b.datetime_start < a.datetime_complete
    ]
    assert overlapping  # evaluations of one update ran at the same time


def test_a_killed_probe_is_rerun(postgres_url):
    name = _new_study(postgres_url, budget=SIZE + 2)
    context = multiprocessing.get_context("spawn")
    dying = context.Process(target=_dying_worker, args=(postgres_url, name))
    dying.start()
    dying.join(timeout=120)
    assert dying.exitcode == 17
    storage = open_storage(postgres_url, heartbeat=FAST)
    study = optuna.load_study(study_name=name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    time.sleep(FAST.grace_period + 1)
    _loop(postgres_url, name, lambda trial: F(SPACE.suggest(trial).to_vector()))
    trials = study.get_trials()
    killed = [t for t in trials if _tag(t) == (0, 2)]
    assert [t.state for t in killed] == [TrialState.FAIL, TrialState.COMPLETE]
    assert killed[1].system_attrs.get("failed_trial") == killed[0].number
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(_tag(t) for t in finished) == [(0, c) for c in range(-1, SIZE)] + [(1, -1)]
    _, iterates = spec_search(F, STEPS, 1)
    np.testing.assert_array_equal(_vector(finished[-1]), iterates[1])
