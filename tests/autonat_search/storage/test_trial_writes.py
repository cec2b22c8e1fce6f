"""Grouped trial writes (parameters and user attributes in one transaction) on PostgreSQL
and the embedded store, read back through Optuna's own ``get_trial``."""

import math
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from autonat_search.storage import HeartbeatSettings, open_storage
from autonat_search.storage import resilient as resilient_module
from autonat_search.storage.trial_writes import write_trial


@pytest.fixture
def storage(storage_url):
    return open_storage(storage_url, max_wait=10)


def _stored(storage, trial_id):
    return RDBStorage.get_trial(storage, trial_id)  # from the database, past Optuna's cache


def _commits(storage):
    done = []
    event.listen(storage.engine, "commit", lambda connection: done.append(1))
    return done


def test_a_group_writes_parameters_and_attributes_at_its_end_in_one_transaction(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    commits = _commits(storage)
    with storage.grouped_writes(trial._trial_id):
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("kind", ["a", "b"])
        trial.set_user_attr("strategy", {"mask_ratios": [0.5]})
        trial.set_user_attr("device", "first")
        trial.set_user_attr("device", "cuda:0")
        assert trial.params["x"] == x and trial.user_attrs["device"] == "cuda:0"
        assert _stored(storage, trial._trial_id).params == {}  # not yet
        before_the_end = len(commits)
    assert len(commits) == before_the_end + 1
    stored = _stored(storage, trial._trial_id)
    assert stored.params == trial.params
    assert stored.distributions["x"] == FloatDistribution(0.0, 1.0)
    assert stored.user_attrs == {"strategy": {"mask_ratios": [0.5]}, "device": "cuda:0"}
    study.tell(trial, x)
    assert study.trials[0].params == trial.params


def test_several_attributes_are_written_and_replaced_at_once(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.set_user_attr("images_generated", 5000)
    storage.set_trial_user_attrs(trial._trial_id, {"images_generated": 10000, "seconds": 2.5})
    assert _stored(storage, trial._trial_id).user_attrs == {
        "images_generated": 10000,
        "seconds": 2.5,
    }


def test_a_nested_group_joins_the_outer_one(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with storage.grouped_writes(trial._trial_id):
        with storage.grouped_writes(trial._trial_id):
            trial.set_user_attr("a", 1)
        assert _stored(storage, trial._trial_id).user_attrs == {}
        trial.set_user_attr("b", 2)
    assert _stored(storage, trial._trial_id).user_attrs == {"a": 1, "b": 2}


def test_another_trial_and_another_thread_write_as_usual(storage):
    import threading

    study = optuna.create_study(storage=storage)
    first, second = study.ask(), study.ask()
    with storage.grouped_writes(first._trial_id):
        second.set_user_attr("device", "other trial")
        other_thread = threading.Thread(target=lambda: first.set_user_attr("elsewhere", 1))
        other_thread.start()
        other_thread.join()
        assert _stored(storage, second._trial_id).user_attrs == {"device": "other trial"}
        assert _stored(storage, first._trial_id).user_attrs == {"elsewhere": 1}


def test_a_finished_trial_refuses_the_writes(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_user_attrs(trial._trial_id, {"seconds": 1.0})
    with pytest.raises(UpdateFinishedTrialError):
        with storage.grouped_writes(trial._trial_id):
            trial.suggest_float("x", 0.0, 1.0)
            trial.set_user_attr("seconds", 1.0)
    stored = _stored(storage, trial._trial_id)
    assert stored.params == {} and stored.user_attrs == {}


def test_a_distribution_contradicting_the_study_is_refused_as_optuna_refuses_it(storage):
    study = optuna.create_study(storage=storage)
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5}, distributions={"x": FloatDistribution(0.0, 1.0)}, value=1.0
        )
    )
    fresh = optuna.load_study(study_name=study.study_name, storage=storage)  # no cached dist
    trial = fresh.ask()
    with pytest.raises(ValueError, match="different distribution kind"):
        with storage.grouped_writes(trial._trial_id):
            trial.suggest_categorical("x", ["a", "b"])
    assert _stored(storage, trial._trial_id).params == {}


def test_writes_of_a_group_that_raised_are_still_recorded(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with pytest.raises(RuntimeError, match="bad strategy"):
        with storage.grouped_writes(trial._trial_id):
            trial.suggest_float("x", 0.0, 1.0)
            raise RuntimeError("bad strategy")
    assert set(_stored(storage, trial._trial_id).params) == {"x"}


def _lost_connection() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("server closed the connection"))


def test_a_group_is_retried_through_a_lost_connection(storage, monkeypatch):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    calls = []

    def drop_first(storage_, trial_id, writes):
        calls.append(trial_id)
        if len(calls) == 1:
            raise _lost_connection()  # before anything was committed
        write_trial(storage_, trial_id, writes)

    monkeypatch.setattr(resilient_module, "write_trial", drop_first)
    with storage.grouped_writes(trial._trial_id):
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("seconds", 1.0)
    assert len(calls) == 2
    stored = _stored(storage, trial._trial_id)
    assert set(stored.params) == {"x"} and stored.user_attrs == {"seconds": 1.0}


def test_a_group_whose_answer_was_lost_after_commit_is_not_an_error(storage, monkeypatch):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    calls = []

    def commit_then_drop(storage_, trial_id, writes):
        calls.append(trial_id)
        write_trial(storage_, trial_id, writes)  # the retry finds its parameters stored
        if len(calls) == 1:
            raise _lost_connection()

    monkeypatch.setattr(resilient_module, "write_trial", commit_then_drop)
    with storage.grouped_writes(trial._trial_id):
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("seconds", 1.0)
    assert len(calls) == 2
    stored = _stored(storage, trial._trial_id)
    assert stored.params == {"x": x} and stored.user_attrs == {"seconds": 1.0}


def test_heartbeats_are_what_optuna_reads_to_find_stale_trials(storage_url):
    storage = open_storage(storage_url, heartbeat=HeartbeatSettings(interval=1, grace_period=2))
    study = optuna.create_study(storage=storage)
    alive, stale = study.ask(), study.ask()
    storage.record_heartbeat_retrying(stale._trial_id)
    storage.record_heartbeat_retrying(alive._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []
    time.sleep(3.5)
    assert storage.record_heartbeat_once(alive._trial_id)  # a later heartbeat replaces it
    assert storage._get_stale_trial_ids(study._study_id) == [stale._trial_id]


def test_intermediate_values_of_a_group_read_back_as_optuna_stores_them(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.set_trial_intermediate_value(trial._trial_id, 40, 9.0)
    with storage.grouped_writes(trial._trial_id):
        storage.set_trial_intermediate_value(trial._trial_id, 40, 1.5)  # replaces
        trial.report(float("inf"), step=80)
        trial.report(float("nan"), step=120)
    stored = _stored(storage, trial._trial_id).intermediate_values
    assert stored[40] == 1.5 and stored[80] == float("inf") and math.isnan(stored[120])


def test_system_attributes_of_a_group_are_written_with_it_and_replace_earlier_ones(storage):
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.set_trial_system_attr(trial._trial_id, "tpe:relative_params:0", "old")
    commits = _commits(storage)
    with storage.grouped_writes(trial._trial_id):
        storage.set_trial_system_attr(trial._trial_id, "tpe:relative_params:0", '{"x": 0.5}')
        storage.set_trial_system_attr(trial._trial_id, "other", [1, 2])
        trial.suggest_float("x", 0.0, 1.0)
        assert _stored(storage, trial._trial_id).system_attrs["tpe:relative_params:0"] == "old"
        before_the_end = len(commits)
    assert len(commits) == before_the_end + 1
    stored = _stored(storage, trial._trial_id).system_attrs
    assert stored["tpe:relative_params:0"] == '{"x": 0.5}' and stored["other"] == [1, 2]
    study.tell(trial, 1.0)
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_system_attr(trial._trial_id, "late", 1)  # outside a group, as Optuna
