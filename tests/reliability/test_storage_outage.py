"""A PostgreSQL restart or a 20 s stop, while work goes on: nothing lost, nothing twice."""

import subprocess
import sys
import threading
import time

import optuna
import pytest
from fake_trials import journal_entries, new_study, run_fake_worker
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.errors import StorageError
from autonat_search.storage import HeartbeatSettings, open_storage

# Trials survive outages shorter than the grace (30 s) untouched.
PATIENT = HeartbeatSettings(interval=2, grace_period=30)
# A grace of 4 s: an 8 s outage makes the running trial's heartbeat stale.
FAST = HeartbeatSettings(interval=1, grace_period=4)


def _in_background(action, delay=0.0):
    def run():
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_storage_calls_wait_for_the_database_and_record_the_result(private_postgres):
    url = private_postgres.url()
    storage = open_storage(url, heartbeat=PATIENT, max_wait=60)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    private_postgres.stop()
    restart = _in_background(private_postgres.start, delay=3)
    trial.set_user_attr("fid_per_rung", {"40": 1.5})  # waits for the database
    study.tell(trial, 1.5)
    restart.join()
    frozen = study.get_trials()[0]
    assert frozen.state == TrialState.COMPLETE and frozen.value == 1.5
    assert frozen.user_attrs["fid_per_rung"] == {"40": 1.5}


def test_grouped_trial_writes_wait_for_the_database(private_postgres):
    storage = open_storage(private_postgres.url(), heartbeat=PATIENT, max_wait=60)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    private_postgres.stop()
    restart = _in_background(private_postgres.start, delay=3)
    with records.grouped_writes(trial):  # one transaction, written when the database is back
        trial.suggest_float("x", 0.0, 1.0)
        records.write_rung(trial, {40: 1.5}, images=40, seconds=2.0)
        trial.report(1.5, step=40)
    restart.join()
    frozen = study.get_trials()[0]
    assert frozen.params == trial.params and frozen.intermediate_values == {40: 1.5}
    assert frozen.user_attrs == {
        "fid_per_rung": {"40": 1.5},
        "images_generated": 40,
        "seconds": 2.0,
    }


def test_a_database_down_for_longer_than_the_wait_is_one_storage_error(private_postgres):
    storage = open_storage(private_postgres.url(), max_wait=2)
    private_postgres.stop()
    try:
        with pytest.raises(StorageError) as caught:
            storage.get_all_studies()
    finally:
        private_postgres.start()
    message = str(caught.value)
    assert "unreachable: tried for 2 s" in message and "\n" not in message
    assert storage.get_all_studies() is not None  # and it recovers afterwards


_WORKER = """
import sys
from fake_trials import run_fake_worker
from autonat_search.storage import HeartbeatSettings
url, name, journal, seed = sys.argv[1:5]
run_fake_worker(url, name, journal, HeartbeatSettings(interval=2, grace_period=30),
                seed=int(seed), step_seconds=0.15)
"""


@pytest.mark.slow
def test_two_workers_go_on_through_a_restart_and_a_20_s_stop(private_postgres, tmp_path):
    url = private_postgres.url()
    name = new_study(url, budget=40, heartbeat=PATIENT)
    journal = tmp_path / "journal.jsonl"
    here = str(__import__("pathlib").Path(__file__).parent)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, name, str(journal), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**__import__("os").environ, "PYTHONPATH": f"{here}:{sys.path[0]}"},
        )
        for seed in (1, 2)
    ]
    deadline = time.monotonic() + 300
    while len(journal_entries(journal)) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    private_postgres.restart()
    time.sleep(3)
    private_postgres.outage(20)
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "Traceback" not in err and "UnboundLocalError" not in err, err
    assert any("storage unreachable" in err for _, err in outputs)  # the outage was felt

    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 40
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    finished = journal_entries(journal)
    numbers = [entry["number"] for entry in finished]
    assert len(numbers) == len(set(numbers))  # no trial evaluated twice
    by_number = {t.number: t for t in trials}
    for entry in finished:  # every finished evaluation is recorded with its value
        trial = by_number[entry["number"]]
        assert trial.state == TrialState.COMPLETE and trial.value == entry["value"]
        assert trial.user_attrs["step2"] == entry["value"] + 2


def test_a_heartbeat_outage_longer_than_the_grace_reruns_the_trial_once(private_postgres, tmp_path):
    url = private_postgres.url()
    name = new_study(url, budget=3, heartbeat=FAST)
    journal = tmp_path / "journal.jsonl"
    outcome = {}

    def worker():
        try:
            outcome["summary"] = run_fake_worker(
                url, name, str(journal), FAST, step_seconds=0.1, long_trial=0
            )
        except BaseException as error:  # surfaced below
            outcome["error"] = error

    thread = threading.Thread(target=worker)
    thread.start()
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running and "step0" in running[0].user_attrs:
            break
        time.sleep(0.1)
    private_postgres.outage(8)
    thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].states.get("LOST") == 1

    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].value is None
    reruns = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert reruns[0].params == trials[0].params
    assert 0 not in [entry["number"] for entry in journal_entries(journal)]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
