"""Eight processes running the trial loop on one study: the budget exact, no duplicates."""

import multiprocessing

import optuna
import pytest
from fake_trials import journal_entries, new_study, run_fake_worker
from optuna.trial import TrialState

from autonat_search.storage import HeartbeatSettings, open_storage

HEARTBEAT = HeartbeatSettings(interval=2, grace_period=30)
BUDGET = 240


def _worker(url: str, name: str, journal: str, seed: int) -> None:
    run_fake_worker(url, name, journal, HEARTBEAT, seed=seed, step_seconds=0.01, poll_seconds=0.05)


@pytest.mark.slow
def test_eight_processes_meet_the_budget_exactly(postgres_url, tmp_path):
    name = new_study(postgres_url, budget=BUDGET, heartbeat=HEARTBEAT)
    journal = tmp_path / "journal.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(postgres_url, name, str(journal), seed))
        for seed in range(8)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=900)
        assert w.exitcode == 0
    trials = optuna.load_study(study_name=name, storage=open_storage(postgres_url)).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == BUDGET
    assert set(states) == {TrialState.COMPLETE}
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    numbers = [entry["number"] for entry in journal_entries(journal)]
    assert sorted(numbers) == list(range(BUDGET))  # each evaluated once, all recorded
