"""``autonat-search worker``, each actor pulling trials until the study's budget is spent:
on one node (``run_worker``: one actor per GPU of this node, or ``cpu_actors`` CPU actors),
or as one driver for a whole Ray cluster (``run_worker_on_all_nodes``: actors on every node,
nodes that join later included). SIGINT/SIGTERM stop new trials; running ones finish and are
recorded."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray

from autonat_search.execution.fingerprint import study_bundle
from autonat_search.execution.placement import ClusterPool, find_node, node_actors, node_share
from autonat_search.execution.trial_loop import WorkerOptions
from autonat_search.storage import load_study, open_storage
from autonat_search.study import study_config

__all__ = ["run_worker", "run_worker_on_all_nodes", "stop_on_signals"]

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(
    actors: Sequence[Any], stopped: threading.Event | None = None
) -> Iterator[None]:
    """SIGINT/SIGTERM: tell every actor to take no new trial (running trials finish) and set
    ``stopped``."""

    def handler(signum: int, _frame: Any) -> None:
        log.warning("signal %d: finishing running trials, starting no new ones", signum)
        if stopped is not None:
            stopped.set()
        for actor in actors:
            actor.stop.remote()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_worker(
    options: WorkerOptions,
    *,
    cpu_actors: int = 1,
    actor_cpus: float = 1.0,
    node_id: str | None = None,
) -> list[dict[str, Any]]:
    """Run trials of a study on one node's devices (by default this process's node) until
    its budget is spent."""
    storage = open_storage(options.storage_url, heartbeat=options.heartbeat)
    study = load_study(storage, options.study_name)
    device_kind = study_config(study).device.kind
    path = study_bundle(study, options.bundle)
    node = find_node(node_id)
    share = node_share(node, device_kind, cpu_actors=cpu_actors, actor_cpus=actor_cpus)
    with node_actors(path, node, device_kind, share) as actors:
        with stop_on_signals(actors):
            return ray.get([a.run_trials.remote(options) for a in actors])


def run_worker_on_all_nodes(
    options: WorkerOptions,
    *,
    cpu_actors: int | None = None,
    actor_cpus: float = 1.0,
    poll_seconds: float = 5.0,
    echo: Callable[[str], None] = log.info,
) -> list[dict[str, Any]]:
    """One driver for the whole Ray cluster: actors on every alive node (one per GPU; on a CPU
    study ``cpu_actors`` per node, or one per CPU slot), and on every node that joins while
    the study runs, until its budget is spent. The bundle path must be valid on every node.
    Returns each actor's summary with its node's id."""
    storage = open_storage(options.storage_url, heartbeat=options.heartbeat)
    study = load_study(storage, options.study_name)
    device_kind = study_config(study).device.kind
    path = study_bundle(study, options.bundle)
    pool = ClusterPool(
        path,
        options,
        device_kind=device_kind,
        cpu_actors=cpu_actors,
        actor_cpus=actor_cpus,
        echo=echo,
    )
    stopped = threading.Event()
    spent = False  # an actor's loop ended by itself: the budget is spent
    results: list[dict[str, Any]] = []
    waiting_said = False
    try:
        with stop_on_signals(pool.actors, stopped):
            while True:
                ending = spent or stopped.is_set()
                if not ending:
                    pool.place_new_nodes()
                if pool.active == 0:
                    if ending:
                        break
                    if not waiting_said:
                        echo("no node can take an actor of this study yet; waiting for nodes")
                        waiting_said = True
                    stopped.wait(poll_seconds)
                    continue
                for summary in pool.wait(poll_seconds):
                    results.append(summary)
                    if not stopped.is_set() and not spent:
                        spent = True
                        pool.drop_unstarted()
    finally:
        pool.kill_all()
    return results
