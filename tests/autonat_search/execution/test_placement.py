"""Several nodes, two ways, on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``: two
nodes, one CPU each) against one PostgreSQL database: (a) one worker per node, each placing
actors on its own node only; (b) one driver (``worker --all-nodes``) placing actors on every
node, including a node that joins while the study runs. The budget is met exactly in both.

The Ray work runs in child processes (the drivers), so that this process's Ray session, which
other tests share, is left alone; this process only starts and grows the cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search.config import parse_study_config
from autonat_search.execution.placement import RayNode, node_share
from autonat_search.storage import StudyLock, open_storage
from autonat_search.study import start_study

REPO = Path(__file__).resolve().parents[3]
DIGITS_BUNDLE = REPO / "autonat_search" / "demo_data" / "bundles" / "digits_demo.yaml"


def _driver_env(**extra: str) -> dict[str, str]:
    """The drivers' environment, read when a driver starts: a Ray session that an earlier test
    started in this process turns token authentication on here (``RAY_AUTH_MODE=token``), the
    cluster's nodes inherit it, and a driver must connect in the same mode."""
    return {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", **extra}


WAIT_SECONDS = 600  # a hang guard, not a speed check


def _study(url: str, budget: int, rungs: tuple[int, int] = (40, 80)) -> str:
    config = parse_study_config(
        {
            "name": f"nodes-{uuid.uuid4().hex[:8]}",
            "bundle": str(DIGITS_BUNDLE),
            "steps": 4,
            "budget": {"n_trials": budget},
            "sampler": {"name": "random", "seed": 0},
            "fidelity": {"rungs": list(rungs), "pruner": "median"},
            "samples": {"chunk": 20, "batch_size": 40},
            "device": {"kind": "cpu", "precision": "fp32"},
            "warm_start": ["reference-initial"],
        }
    )
    start_study(config, open_storage(url))
    return config.name


def _finished_and_running(url: str, name: str) -> tuple[int, int]:
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    states = [t.state for t in trials]
    finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
    return finished, states.count(TrialState.RUNNING) + states.count(TrialState.WAITING)


def _wait_until(condition: Callable[[], bool], what: str, output: list[str] | None = None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        shown = "".join(output or [])
        assert time.monotonic() < deadline, f"gave up waiting for {what}; output:\n{shown}"
        time.sleep(0.2)


@pytest.fixture
def ray_cluster() -> Iterator:
    """A real Ray cluster of separate node processes; the head has one CPU."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        yield cluster
    finally:
        cluster.shutdown()


PER_NODE_DRIVER = """
import json, sys, threading
import ray
from autonat_search.execution import WorkerOptions, alive_nodes, run_worker

address, url, name = sys.argv[1:4]
ray.init(address=address, log_to_driver=False)
options = WorkerOptions(storage_url=url, study_name=name, poll_seconds=0.2)
nodes = [node.node_id for node in alive_nodes()]
results, errors = {}, []

def one_worker(node_id):  # what `autonat-search worker` does on the node `node_id`
    try:
        results[node_id] = run_worker(options, cpu_actors=1, node_id=node_id)
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=one_worker, args=(node,)) for node in nodes]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"nodes": nodes, "results": results, "errors": errors}))
"""


@pytest.mark.slow
def test_one_worker_per_node_places_actors_on_its_own_node(ray_cluster, postgres_url):
    second = ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    name = _study(postgres_url, budget=8)
    done = subprocess.run(
        [sys.executable, "-c", PER_NODE_DRIVER, ray_cluster.address, postgres_url, name],
        env=_driver_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["errors"], report["errors"]
    expected = {ray_cluster.head_node.node_id, second.node_id}
    assert set(report["nodes"]) == expected
    for node_id, summaries in report["results"].items():
        assert [s["node"] for s in summaries] == [node_id]  # one actor, on its own node
    assert _finished_and_running(postgres_url, name) == (8, 0)
    started = sum(s["started"] for ss in report["results"].values() for s in ss)
    assert started >= 8


KILL_ACTOR = """
import os, signal, sys
import optuna, ray
from autonat_search.storage import open_storage
from running_actors import stop_actor_of_running_trial

address, url, study_name = sys.argv[1:4]
ray.init(address=address, log_to_driver=False)
study = optuna.load_study(study_name=study_name, storage=open_storage(url))
print("connected", flush=True)
trial, pid = stop_actor_of_running_trial(study)
os.kill(pid, signal.SIGKILL)
print(trial.user_attrs["actor"])
"""


@pytest.mark.slow
def test_one_driver_places_actors_on_every_node_and_on_nodes_that_join(ray_cluster, postgres_url):
    budget = 20
    # A first rung of 200 samples: trials slow enough that the budget is not spent before the
    # new node's actor is ready.
    name = _study(postgres_url, budget=budget, rungs=(200, 400))
    head = ray_cluster.head_node.node_id
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autonat_search.cli",
            "worker",
            "--study",
            name,
            "--ray-address",
            ray_cluster.address,
            "--all-nodes",
        ],
        env=_driver_env(AUTONAT_STORAGE=postgres_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert driver.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(driver.stdout), daemon=True)
    reader.start()
    lock = StudyLock(postgres_url, name)
    try:
        _wait_until(lambda: any(f"node {head}" in x and "ready" in x for x in lines), "head")
        _wait_until(lambda: _finished_and_running(postgres_url, name)[0] >= 1, "a first trial")
        # The study runs; a node joins. While it starts, nobody may reserve a trial, so that
        # the budget is not spent before the new node's actor can take a share.
        lock.acquire()
        try:
            joined = ray_cluster.add_node(num_cpus=1).node_id
            _wait_until(
                lambda: any(f"node {joined}" in x and "ready" in x for x in lines), "new node"
            )
            assert _finished_and_running(postgres_url, name)[0] < budget - 4
            # An actor killed while its trial runs (stopped first, so that the trial cannot end
            # before the kill, as it did on a slow machine): the trial is failed at once and
            # re-run, a replacement takes its place on its (alive) node. The killer connects
            # before the lock is released, and the lock is held again from the kill until the
            # replacement is placed, so that the budget cannot be spent before it.
            killer = subprocess.Popen(
                [sys.executable, "-c", KILL_ACTOR, ray_cluster.address, postgres_url, name],
                env=_driver_env(PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert killer.stdout is not None
            assert killer.stdout.readline().strip() == "connected", killer.stderr
        finally:
            lock.release()
        victim, errors = killer.communicate(timeout=WAIT_SECONDS)
        victim = victim.strip()
        with lock.held():
            assert killer.returncode == 0, errors
            _wait_until(
                lambda: any("replacement actor placed" in x for x in lines), "replacement", lines
            )
        assert driver.wait(timeout=WAIT_SECONDS) == 0, "".join(lines)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert _finished_and_running(postgres_url, name) == (budget, 0), output
    assert "repeated" not in output  # every actor's progress lines shown, none folded by Ray
    # A summary per actor whose loop ended (a replacement still loading when the budget was
    # spent is dropped without one); the nodes that ran trials, the killed actor's included.
    summaries = [x for x in lines if x.startswith("actor ")]
    nodes = [x.rsplit("node ", 1)[1].strip() for x in summaries]
    assert set(nodes) <= {head, joined}, output
    ran = {
        node
        for node, x in zip(nodes, summaries, strict=True)
        if int(x.split("started ", 1)[1].split(",")[0])
    }
    [died] = [x for x in lines if f"actor {victim} died" in x]
    ran.add(died.split("node ", 1)[1].split(" ", 1)[0])  # the killed actor was running one
    assert ran == {head, joined}, output  # both nodes ran trials
    trials = optuna.load_study(study_name=name, storage=open_storage(postgres_url)).get_trials()
    [lost] = [
        t for t in trials if t.user_attrs.get("actor") == victim and t.state == TrialState.FAIL
    ]
    assert lost.user_attrs["fail_reason"].startswith(f"actor {victim} died"), output
    [rerun] = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert rerun.state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_a_node_takes_one_actor_per_gpu_or_cpu_slot():
    gpu_node = RayNode("n1", "10.0.0.1", cpus=32, gpus=8)
    share = node_share(gpu_node, "cuda", cpu_actors=None, actor_cpus=1.0)
    assert share.count == 8 and share.resources == {"num_gpus": 1, "num_cpus": 1.0}
    few_cpus = RayNode("n2", "10.0.0.2", cpus=4, gpus=8)
    assert node_share(few_cpus, "cuda", cpu_actors=None, actor_cpus=1.0).resources == {
        "num_gpus": 1,
        "num_cpus": 0.5,
    }
    head_without_gpus = RayNode("n0", "10.0.0.1", cpus=8, gpus=0)
    assert node_share(head_without_gpus, "cuda", cpu_actors=None, actor_cpus=1.0).count == 0
    cpu_node = RayNode("n3", "10.0.0.3", cpus=6, gpus=0)
    assert node_share(cpu_node, "cpu", cpu_actors=None, actor_cpus=2.0).count == 3
    assert node_share(cpu_node, "cpu", cpu_actors=1, actor_cpus=1.0).count == 1
    with pytest.raises(ValueError, match="--cpu-actors must be >= 1"):
        node_share(cpu_node, "cpu", cpu_actors=0, actor_cpus=1.0)
