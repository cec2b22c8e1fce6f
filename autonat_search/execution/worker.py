"""``autonat-search worker``, each actor pulling trials until the study's budget is spent:
on one node (``run_worker``: one actor per GPU of this node, or ``cpu_actors`` CPU actors),
or as one driver for a whole Ray cluster (``run_worker_on_all_nodes``: actors on every node,
nodes that join later included).

The driver supervises its actors:

* An actor that dies (its process killed, out of host memory, its node gone...) fails only
  the trials it was running, with the reason, and their re-runs are enqueued at once; a
  replacement actor takes its place where its node is alive (at most as many replacements
  as actors), or the others carry on.
* The first SIGINT/SIGTERM stops new trials and lets running ones finish; a second one
  stops at once: running trials are failed and their re-runs enqueued. Either way the
  worker returns normally (exit code 0). Ray's processes are stopped afterwards by
  ``ray.shutdown()`` (a local Ray is started outside our process group: ``ray_session``).
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
import ray
from ray.exceptions import RayActorError, RayTaskError

from autonat_search.errors import AutonatError, ConfigError
from autonat_search.execution.actors import pinned_actors
from autonat_search.execution.fingerprint import study_bundle
from autonat_search.execution.placement import ClusterPool, find_node, node_share
from autonat_search.execution.trial_loop import WorkerOptions
from autonat_search.storage import fail_trials_of_actor, load_study, open_storage
from autonat_search.study import study_config

__all__ = [
    "StopRequest",
    "fail_trials_of_actor",
    "run_worker",
    "run_worker_on_all_nodes",
    "stop_on_signals",
]

log = logging.getLogger(__name__)


class StopRequest:
    """What the signals asked for: ``finish`` (no new trials) and ``now`` (stop at once)."""

    def __init__(self) -> None:
        self.finish = threading.Event()
        self.now = threading.Event()

    def signal(self) -> None:
        if self.finish.is_set():
            self.now.set()
        self.finish.set()


@contextmanager
def stop_on_signals(request: StopRequest) -> Iterator[StopRequest]:
    """SIGINT/SIGTERM: the first finishes running trials, the second stops at once."""

    def handler(signum: int, _frame: Any) -> None:
        first = not request.finish.is_set()
        request.signal()
        if first:
            log.warning("signal %d: finishing running trials, starting no new ones", signum)
        else:
            log.warning("signal %d again: failing running trials for re-run, stopping", signum)

    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class _Slot:
    actor: Any
    name: str


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_worker(
    options: WorkerOptions,
    *,
    cpu_actors: int = 1,
    actor_cpus: float = 1.0,
    node_id: str | None = None,
    stop: StopRequest | None = None,
) -> list[dict[str, Any]]:
    """Run trials of a study on one node's devices (by default this process's node) until
    its budget is spent."""
    storage = open_storage(options.storage_url, max_wait=options.storage_wait)
    study = load_study(storage, options.study_name)
    config = study_config(study)
    if options.batch_size is not None:
        config.with_batch_size(options.batch_size)  # a bad --batch-size fails here, not later
    path = study_bundle(study, options.bundle)
    node = find_node(node_id)
    share = node_share(node, config.device.kind, cpu_actors=cpu_actors, actor_cpus=actor_cpus)
    if share.count == 0:
        if config.device.kind == "cuda":
            raise ConfigError(f"the study runs on cuda, but {node.describe()} has no CUDA device")
        raise ConfigError(f"{node.describe()} has no CPU slot for an actor")
    prefix = f"autonat-{options.study_name}-{uuid.uuid4().hex[:8]}"

    def start(index: int) -> _Slot:
        name = f"{prefix}-{index}"
        (actor,) = pinned_actors(
            path, node.node_id, config.device.kind, 1, share.resources, names=[name]
        )
        return _Slot(actor, name)

    slots = [start(i) for i in range(share.count)]
    try:
        ray.get([s.actor.device_name.remote() for s in slots])  # surfaces load errors now
    except BaseException:
        for s in slots:
            ray.kill(s.actor)
        raise
    request = stop or StopRequest()
    with stop_on_signals(request):
        return _supervise(study, options, slots, start, request)


def _supervise(
    study: optuna.Study,
    options: WorkerOptions,
    slots: list[_Slot],
    start: Any,
    request: StopRequest,
) -> list[dict[str, Any]]:
    running = {s.actor.run_trials.remote(options): s for s in slots}
    every = list(slots)
    replacements = len(slots)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    forwarded = (False, False)
    try:
        while running:
            state = (request.finish.is_set(), request.now.is_set())
            if state != forwarded:
                for slot in running.values():
                    slot.actor.stop.remote(now=state[1])
                forwarded = state
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                slot = running.pop(ref)
                try:
                    results.append(ray.get(ref))
                except RayActorError as error:
                    reason = f"actor {slot.name} died: {_first_line(error)}"
                    failed = fail_trials_of_actor(study, slot.name, reason)
                    log.warning("%s; trials %s failed and enqueued again", reason, failed)
                    if replacements > 0 and not request.finish.is_set():
                        replacements -= 1
                        new = start(len(every))
                        every.append(new)
                        running[new.actor.run_trials.remote(options)] = new
                except RayTaskError as error:
                    cause = error.cause if isinstance(error.cause, BaseException) else error
                    log.warning("actor %s stopped: %s", slot.name, _first_line(cause))
                    errors.append(cause)
    finally:
        for slot in every:
            ray.kill(slot.actor)
    if errors:
        first = errors[0]
        if isinstance(first, AutonatError):
            raise first
        raise RuntimeError(f"a worker actor failed: {_first_line(first)}") from first
    return results


def run_worker_on_all_nodes(
    options: WorkerOptions,
    *,
    cpu_actors: int | None = None,
    actor_cpus: float = 1.0,
    poll_seconds: float = 5.0,
    echo: Callable[[str], None] = log.info,
    stop: StopRequest | None = None,
) -> list[dict[str, Any]]:
    """One driver for the whole Ray cluster: actors on every alive node (one per GPU; on a CPU
    study ``cpu_actors`` per node, or one per CPU slot), and on every node that joins while
    the study runs, until its budget is spent. The bundle path must be valid on every node.
    Returns each actor's summary with its node's id."""
    storage = open_storage(options.storage_url, max_wait=options.storage_wait)
    study = load_study(storage, options.study_name)
    config = study_config(study)
    if options.batch_size is not None:
        config.with_batch_size(options.batch_size)  # a bad --batch-size fails here, not later
    device_kind = config.device.kind
    path = study_bundle(study, options.bundle)
    pool = ClusterPool(
        path,
        options,
        study=study,
        device_kind=device_kind,
        cpu_actors=cpu_actors,
        actor_cpus=actor_cpus,
        echo=echo,
    )
    request = stop or StopRequest()
    forwarded = (False, False)
    spent = False  # an actor's loop ended by itself: the budget is spent
    results: list[dict[str, Any]] = []
    waiting_said = False
    try:
        with stop_on_signals(request):
            while True:
                state = (request.finish.is_set(), request.now.is_set())
                if state != forwarded:
                    for actor in pool.actors:
                        actor.stop.remote(now=state[1])
                    forwarded = state
                ending = spent or request.finish.is_set()
                if not ending:
                    pool.replace_lost()
                    pool.place_new_nodes()
                if pool.active == 0:
                    if ending:
                        break
                    if not waiting_said:
                        echo("no node can take an actor of this study yet; waiting for nodes")
                        waiting_said = True
                    request.finish.wait(poll_seconds)
                    continue
                for summary in pool.wait(poll_seconds):
                    results.append(summary)
                    if not request.finish.is_set() and not spent:
                        spent = True
                        pool.drop_unstarted()
    finally:
        pool.kill_all()
    return results
