"""A fast fake objective and a worker process running the real trial loop with it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import optuna

from autonat_search.execution.heartbeat import check_trial_alive
from autonat_search.execution.trial_loop import LoopSummary, run_trial_loop
from autonat_search.records import STUDY_BUDGET
from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage


def new_study(url: str, budget: int, heartbeat: HeartbeatSettings) -> str:
    name = f"rel-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat=heartbeat))
    study.set_user_attr(STUDY_BUDGET, budget)
    return name


class FakeObjective:
    """Three steps of ``step_seconds``, each reported and recorded as a user attribute; a
    line in ``journal`` for every evaluation that finished (what must not be lost)."""

    def __init__(self, journal: Path, step_seconds: float = 0.1, long_trial: int = -1) -> None:
        self.journal = journal
        self.step_seconds = step_seconds
        self.long_trial = long_trial

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        steps = 300 if trial.number == self.long_trial else 3
        for step in range(steps):
            time.sleep(self.step_seconds)
            check_trial_alive()
            if step < 3:
                trial.set_user_attr(f"step{step}", x + step)
                trial.report(x + step, step=step)
        with self.journal.open("a") as out:
            out.write(json.dumps({"number": trial.number, "value": x}) + "\n")
        return x


def run_fake_worker(
    url: str,
    name: str,
    journal: str,
    heartbeat: HeartbeatSettings,
    *,
    seed: int = 0,
    step_seconds: float = 0.1,
    long_trial: int = -1,
    storage_wait: float = 120.0,
    poll_seconds: float = 0.2,
) -> LoopSummary:
    storage = open_storage(url, heartbeat=heartbeat, max_wait=storage_wait)
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    return run_trial_loop(
        study,
        FakeObjective(Path(journal), step_seconds, long_trial),
        StudyLock(url, name, max_wait=storage_wait),
        storage=storage,
        stop=threading.Event(),
        poll_seconds=poll_seconds,
        max_consecutive_failures=1000,
    )


def journal_entries(journal: Path) -> list[dict[str, float]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text().splitlines()]
