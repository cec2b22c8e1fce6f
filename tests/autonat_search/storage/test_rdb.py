import math

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.errors import StorageError
from autonat_search.storage import (
    EMBEDDED_DEFAULT,
    BudgetStanding,
    budget_standing,
    open_storage,
    redact,
    resolve_storage_url,
    rung_values,
    trial_state,
)
from autonat_search.storage.rdb import sqlite_file


def test_url_resolution_order(monkeypatch, tmp_path):
    # An embedded store's file is made absolute: Ray actors run in another folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTONAT_STORAGE", raising=False)
    assert EMBEDDED_DEFAULT == "sqlite:///autonat-search.db"
    assert resolve_storage_url(None) == f"sqlite:///{tmp_path / 'autonat-search.db'}"
    monkeypatch.setenv("AUTONAT_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_storage_url("sqlite:///given.db") == f"sqlite:///{tmp_path / 'given.db'}"


def test_redact_hides_the_password():
    shown = redact("postgresql+psycopg2://user:s3cret@db.example:5432/studies")
    assert "s3cret" not in shown and "***" in shown and "db.example" in shown
    assert redact("not a url at all") == "<unparsable storage URL>"


def test_unsupported_and_unusable_urls_are_storage_errors(tmp_path):
    with pytest.raises(StorageError, match="unsupported storage mysql://u:\\*\\*\\*@h/d"):
        open_storage("mysql://u:pw@h/d")
    with pytest.raises(StorageError, match="needs a file"):
        open_storage("sqlite:///:memory:")
    assert sqlite_file(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db"
    assert sqlite_file("postgresql+psycopg2://h/d") is None


def test_the_embedded_store_is_created_with_its_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'studies.db'}"
    storage = open_storage(url)
    assert storage.get_all_studies() == []
    assert (tmp_path / "nested" / "studies.db").is_file()


def test_the_budget_standing_and_a_trial_state_read_optunas_tables(storage_url):
    storage = open_storage(storage_url)
    study = optuna.create_study(storage=storage)
    with pytest.raises(KeyError):
        budget_standing(storage, study)  # no budget: not a study of this service
    records.write_budget(study, 5)
    done, pruned = study.ask(), study.ask()
    study.tell(done, 1.0)
    study.tell(pruned, state=TrialState.PRUNED)
    running = study.ask()
    study.enqueue_trial({})
    assert budget_standing(storage, study) == BudgetStanding(2, 1, 5, waiting=1)
    assert trial_state(storage, running._trial_id) == TrialState.RUNNING
    assert trial_state(storage, pruned._trial_id) == TrialState.PRUNED
    with pytest.raises(KeyError):
        trial_state(storage, running._trial_id + 1000)


def test_rung_values_are_what_get_trials_shows_at_that_step_of_trials_that_did_not_fail(
    storage_url,
):
    storage = open_storage(storage_url)
    study = optuna.create_study(storage=storage, study_name="rungs")
    other = optuna.create_study(storage=storage, study_name="other")
    reported = [(100, 3.5), (100, math.inf), (100, math.nan), (200, -math.inf)]
    for step, value in reported:
        trial = study.ask()
        trial.report(value, step)
    failed = study.ask()
    failed.report(1.0, 100)
    study.tell(failed, state=TrialState.FAIL)
    finished = study.ask()
    finished.report(2.0, 100)
    finished.report(1.5, 200)
    study.tell(finished, 1.5)
    other.ask().report(9.0, 100)

    for step in (100, 200, 300):
        expected = sorted(
            (t.number, t.intermediate_values[step])
            for t in study.get_trials()
            if t.state != TrialState.FAIL and step in t.intermediate_values
        )
        got = sorted(rung_values(storage, study, step))
        assert [n for n, _ in got] == [n for n, _ in expected]
        assert all(
            g == e or (math.isnan(g) and math.isnan(e))
            for (_, g), (_, e) in zip(got, expected, strict=True)
        )
    assert sorted(rung_values(storage, study, 100))[:2] == [(0, 3.5), (1, math.inf)]
    assert rung_values(storage, study, 300) == []
