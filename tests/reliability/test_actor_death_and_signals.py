"""An actor killed mid-trial, and SIGTERM to a worker's whole process group."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from running_actors import stop_actor_of_running_trial, wait_for_running_trial

from autonat_search import records
from autonat_search.config import parse_study_config
from autonat_search.execution import WorkerOptions, run_worker
from autonat_search.storage import open_storage
from autonat_search.study import start_study

RUNGS = [40, 80, 120, 160]


def _study_data(bundle, budget):
    return {
        "name": f"rel-{uuid.uuid4().hex[:8]}",
        "bundle": str(bundle),
        "steps": 4,
        "budget": {"n_trials": budget},
        "sampler": {"name": "random", "seed": 0},
        "fidelity": {"rungs": RUNGS, "pruner": "none"},
        "samples": {"chunk": 20, "batch_size": 40},
        "device": {"kind": "cpu", "precision": "fp32"},
        "heartbeat": {"interval": 2, "grace_period": 60},
    }


@pytest.mark.slow
def test_a_killed_actor_fails_only_its_trial_which_is_rerun(
    ray_session, postgres_url, quick_digits_bundle
):
    config = parse_study_config(_study_data(quick_digits_bundle, budget=6))
    start_study(config, open_storage(postgres_url))
    options = WorkerOptions(storage_url=postgres_url, study_name=config.name, poll_seconds=0.2)
    outcome = {}

    def worker():
        try:
            outcome["results"] = run_worker(options, cpu_actors=2, actor_cpus=0.5)
        except BaseException as error:  # surfaced below
            outcome["error"] = error

    thread = threading.Thread(target=worker)
    thread.start()
    study = optuna.load_study(study_name=config.name, storage=open_storage(postgres_url))
    victim, pid = stop_actor_of_running_trial(study)
    os.kill(pid, signal.SIGKILL)  # the actor's process dies mid-trial
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")

    trials = study.get_trials()
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died" in killed.user_attrs[records.TRIAL_FAIL_REASON]
    assert [t.state for t in trials].count(TrialState.FAIL) == 1  # only its own trial
    reruns = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert killed.params.items() <= reruns[0].params.items()  # as far as it had come
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert TrialState.RUNNING not in [t.state for t in trials]
    # the dead actor returned no summary: its trials (the killed one, and any it ran before)
    dead = victim.user_attrs[records.TRIAL_ACTOR]
    by_the_dead = [t for t in trials if t.user_attrs.get(records.TRIAL_ACTOR) == dead]
    assert sum(r["started"] for r in outcome["results"]) == len(trials) - len(by_the_dead)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name), from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            found[int(entry)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), name)
    return found


def _raylets_below(root: int) -> list[int]:
    table = _processes()
    below, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - below
        below |= frontier
    return [pid for pid in below if "raylet" in table[pid][1]]


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.ray  # the worker subprocess
def test_sigterm_to_the_process_group_finishes_trials_and_exits_0(
    postgres_url, quick_digits_bundle, tmp_path
):
    data = _study_data(quick_digits_bundle, budget=10_000)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    env = dict(os.environ, AUTONAT_STORAGE=postgres_url)
    command = [sys.executable, "-m", "autonat_search.cli"]
    created = subprocess.run([*command, "start-study", str(path)], env=env, capture_output=True)
    assert created.returncode == 0, created.stderr
    worker = subprocess.Popen(
        [*command, "worker", "--study", data["name"], "--cpu-actors", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as under timeout, systemd or Slurm
    )
    study = optuna.load_study(study_name=data["name"], storage=open_storage(postgres_url))
    wait_for_running_trial(study)
    raylets = _raylets_below(worker.pid)
    assert raylets and all(os.getpgid(pid) != worker.pid for pid in raylets)
    os.killpg(worker.pid, signal.SIGTERM)
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    assert "Traceback" not in err, err
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert TrialState.RUNNING not in states
    assert TrialState.COMPLETE in states and len(states) < 10_000
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in raylets) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in raylets), "Ray's processes outlived the worker"
