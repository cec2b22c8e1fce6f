"""A result ready while the database stays away longer than the worker waits: kept on disk,
recorded by the next worker, and never evaluated a second time."""

import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from fake_trials import FakeObjective, journal_entries, new_study
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from autonat_search.errors import StorageError
from autonat_search.execution.pending_results import PENDING_DIR_ENV, record_pending
from autonat_search.execution.trial_loop import run_trial_loop
from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

HEARTBEAT = HeartbeatSettings(interval=1, grace_period=4)


class _DatabaseGoesAway(FakeObjective):
    """The first evaluation stops the database just before it returns its value."""

    def __init__(self, journal: Path, cluster) -> None:
        super().__init__(journal, step_seconds=0.05)
        self.cluster = cluster

    def __call__(self, trial: optuna.Trial) -> float:
        value = super().__call__(trial)
        if trial.number == 0:
            self.cluster.stop()
        return value


def _first_trial_kept(cluster, tmp_path: Path, monkeypatch) -> tuple[str, StorageError]:
    """Run a worker whose first result cannot be told within its 2 s wait."""
    monkeypatch.setenv(PENDING_DIR_ENV, str(tmp_path / "pending"))
    url = cluster.url()
    name = new_study(url, budget=2, heartbeat=HEARTBEAT)
    storage = open_storage(url, heartbeat=HEARTBEAT, max_wait=2)
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    with pytest.raises(StorageError) as caught:
        run_trial_loop(
            study,
            _DatabaseGoesAway(tmp_path / "journal.jsonl", cluster),
            StudyLock(url, name, max_wait=2),
            storage=storage,
            stop=threading.Event(),
            poll_seconds=0.2,
        )
    cluster.start()
    return name, caught.value


def _next_worker(url: str, name: str) -> tuple[optuna.Study, int]:
    storage = open_storage(url, heartbeat=HEARTBEAT)
    study = optuna.load_study(study_name=name, storage=storage)
    return study, record_pending(study, storage, StudyLock(url, name))


def test_a_result_kept_through_a_long_outage_is_recorded_by_the_next_worker(
    private_postgres, tmp_path, monkeypatch
):
    name, error = _first_trial_kept(private_postgres, tmp_path, monkeypatch)
    message = str(error)
    assert "unreachable" in message and "kept in" in message and "\n" not in message
    assert len(list((tmp_path / "pending").glob("*.json"))) == 1

    study, recorded = _next_worker(private_postgres.url(), name)
    assert recorded == 1
    [trial] = study.get_trials()
    [finished] = journal_entries(tmp_path / "journal.jsonl")
    assert trial.state == TrialState.COMPLETE and trial.value == finished["value"]
    assert trial.user_attrs["step2"] == finished["value"] + 2  # written before the outage
    assert not list((tmp_path / "pending").iterdir())  # recorded once, then removed
    assert _next_worker(private_postgres.url(), name)[1] == 0


def test_a_kept_result_of_a_trial_failed_as_stale_completes_its_rerun(
    private_postgres, tmp_path, monkeypatch
):
    name, _ = _first_trial_kept(private_postgres, tmp_path, monkeypatch)
    url = private_postgres.url()
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=HEARTBEAT))
    time.sleep(HEARTBEAT.grace_period + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # what another worker does meanwhile
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]

    study, recorded = _next_worker(url, name)
    assert recorded == 1
    original, rerun = study.get_trials()
    [finished] = journal_entries(tmp_path / "journal.jsonl")  # evaluated once, not twice
    assert original.state == TrialState.FAIL
    assert rerun.state == TrialState.COMPLETE and rerun.value == finished["value"]
    assert rerun.params == original.params
    assert rerun.intermediate_values == original.intermediate_values
    assert rerun.user_attrs["recorded_from_trial"] == original.number
