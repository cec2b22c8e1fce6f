"""A trial failed by another worker is never also told; a trial stopped at once is re-run."""

import logging
import threading

import optuna
from fake_trials import new_study
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.execution.heartbeat import check_trial_alive
from autonat_search.execution.trial_loop import run_trial_loop
from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

HEARTBEAT = HeartbeatSettings(interval=1, grace_period=3)


def _loop(url, name, objective, *, stop=None, abort=None):
    storage = open_storage(url, heartbeat=HEARTBEAT)
    study = optuna.load_study(study_name=name, storage=storage)
    summary = run_trial_loop(
        study,
        objective,
        StudyLock(url, name),
        storage=storage,
        stop=stop or threading.Event(),
        abort=abort,
        poll_seconds=0.05,
    )
    return study, summary


def test_a_result_for_a_trial_failed_elsewhere_is_not_told(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = new_study(url, budget=2, heartbeat=HEARTBEAT)
    other_worker = open_storage(url)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 0:  # meanwhile another worker judged it dead
            other_worker.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return x

    with caplog.at_level(logging.WARNING):
        study, summary = _loop(url, name, objective)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].value is None
    assert summary.states == {"LOST": 1, "COMPLETE": 2}
    assert "trial 0 was failed by another worker" in caplog.text


def test_stopping_at_once_fails_the_running_trial_for_a_rerun(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = new_study(url, budget=5, heartbeat=HEARTBEAT)
    stop, abort = threading.Event(), threading.Event()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:  # a second SIGTERM arrives mid-trial
            stop.set()
            abort.set()
        check_trial_alive()
        return x

    study, summary = _loop(url, name, objective, stop=stop, abort=abort)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert "interrupted" in trials[1].user_attrs[records.TRIAL_FAIL_REASON]
    assert trials[2].system_attrs["failed_trial"] == 1 and trials[2].params == trials[1].params
    assert records.TRIAL_FAIL_REASON not in trials[2].user_attrs  # the re-run starts clean
    assert summary.states == {"COMPLETE": 1, "INTERRUPTED": 1}
