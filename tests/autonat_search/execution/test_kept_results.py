"""Kept results on the embedded store: written whole, claimed once, orphans reclaimed."""

import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search.execution.pending_results import PendingResult, keep_pending, record_pending
from autonat_search.records import STUDY_BUDGET
from autonat_search.storage import StudyLock, open_storage, redact, storage_url_of


def _running_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="kept", storage=storage)
    study.set_user_attr(STUDY_BUDGET, 4)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    result = PendingResult(
        storage=redact(storage_url_of(storage)),
        study_name="kept",
        trial_id=trial._trial_id,
        trial_number=trial.number,
        state="COMPLETE",
        value=0.25,
    )
    return url, storage, study, result


def test_a_file_claimed_by_a_process_that_died_is_recorded(tmp_path):
    url, storage, study, result = _running_trial(tmp_path)
    path = keep_pending(result, tmp_path / "pending")
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.rename(path.with_suffix(f".claimed-{dead.pid}"))
    other = result.__class__(**{**result.__dict__, "study_name": "another-study"})
    keep_pending(other, tmp_path / "pending")  # another study's file is left alone
    recorded = record_pending(study, storage, StudyLock(url, "kept"), tmp_path / "pending")
    assert recorded == 1
    [trial] = study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.value == 0.25
    [left] = (tmp_path / "pending").iterdir()
    assert left.name.startswith("another-study.") and left.suffix == ".json"


@pytest.mark.parametrize(
    ("state", "value", "problem"),
    [("FAIL", None, "only COMPLETE or PRUNED"), ("COMPLETE", float("nan"), "finite value")],
)
def test_only_finished_work_with_a_finite_value_is_kept(tmp_path, state, value, problem):
    _, _, _, result = _running_trial(tmp_path)
    bad = result.__class__(**{**result.__dict__, "state": state, "value": value})
    with pytest.raises(ValueError, match=problem):
        keep_pending(bad, tmp_path / "pending")
    assert not (tmp_path / "pending").exists()


def test_a_trial_failed_as_stale_while_recording_gets_its_rerun_completed(tmp_path, monkeypatch):
    from autonat_search.storage import fail_and_rerun

    url, storage, study, result = _running_trial(tmp_path)
    keep_pending(result, tmp_path / "pending")
    real_tell = study.tell

    def stale_first(trial, *args, **kwargs):  # another worker fails it just before the tell
        if trial == result.trial_number:
            fail_and_rerun(study, result.trial_id, "heartbeat stale")
        return real_tell(trial, *args, **kwargs)

    monkeypatch.setattr(study, "tell", stale_first)
    assert record_pending(study, storage, StudyLock(url, "kept"), tmp_path / "pending") == 1
    original, rerun = study.get_trials()
    assert original.state == TrialState.FAIL
    assert rerun.state == TrialState.COMPLETE and rerun.value == 0.25
    assert rerun.user_attrs["recorded_from_trial"] == original.number
