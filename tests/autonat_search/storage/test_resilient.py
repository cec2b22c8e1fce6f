"""The retrying storage: connection errors are retried, answers lost after a commit are
recognised, other errors pass unchanged (real outages: tests/reliability)."""

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError

from autonat_search.storage import is_connection_error, open_storage


def _lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_connection_errors_are_recognised_through_optuna_wrapping():
    try:
        try:
            raise _lost_connection()
        except OperationalError as error:
            raise optuna.exceptions.StorageInternalError("commit failed") from error
    except optuna.exceptions.StorageInternalError as wrapped:
        assert is_connection_error(wrapped)
    assert not is_connection_error(ValueError("bad value"))


def test_a_tell_whose_answer_was_lost_after_commit_is_not_an_error(tmp_path, monkeypatch):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    real = RDBStorage.set_trial_state_values
    calls = []

    def commit_then_drop(self, trial_id, state, values=None):
        calls.append(state)
        result = real(self, trial_id, state, values)
        if len(calls) == 1:
            raise _lost_connection()  # committed, but the answer never arrived
        return result

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", commit_then_drop)
    study.tell(trial, 0.25)
    assert len(calls) == 2
    frozen = study.get_trials()[0]
    assert frozen.state == TrialState.COMPLETE and frozen.value == 0.25


def test_a_trial_finished_by_someone_else_still_refuses_the_tell(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [0.5])


def test_every_backend_call_of_optunas_cache_is_retried():
    """Optuna's study reaches the storage through ``_CachedStorage``, partly via private
    methods: each of them must be one that ``ResilientRDBStorage`` retries."""
    import inspect
    import re

    from optuna.storages import _cached_storage

    from autonat_search.storage.resilient import _RETRIED

    called = set(re.findall(r"self\._backend\.(\w+)", inspect.getsource(_cached_storage)))
    not_retried = {"record_heartbeat", "get_heartbeat_interval"}  # periodic / no database
    not_retried |= {"get_heartbeat_stale_trial_callback", "set_trial_state_values"}  # own
    # own, kept by a group of writes or retried
    not_retried |= {"set_trial_user_attr", "set_trial_system_attr"}
    not_retried |= {"set_trial_intermediate_value", "_set_trial_param"}
    assert called - not_retried <= set(_RETRIED)
