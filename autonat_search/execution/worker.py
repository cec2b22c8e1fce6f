"""``autonat-search worker`` on one node: one actor per local GPU (or ``cpu_actors`` CPU
actors), each pulling trials until the study's budget is spent. SIGINT/SIGTERM stop new
trials; running ones finish and are recorded."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray

from autonat_search.execution.actors import local_actors
from autonat_search.execution.fingerprint import study_bundle
from autonat_search.execution.trial_loop import WorkerOptions
from autonat_search.storage import load_study, open_storage
from autonat_search.study import study_config

__all__ = ["run_worker", "stop_on_signals"]

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(actors: Sequence[Any]) -> Iterator[None]:
    """SIGINT/SIGTERM: tell every actor to take no new trial; running trials finish."""

    def handler(signum: int, _frame: Any) -> None:
        log.warning("signal %d: finishing running trials, starting no new ones", signum)
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
) -> list[dict[str, Any]]:
    """Run trials of a study on this node's devices until its budget is spent."""
    storage = open_storage(options.storage_url, heartbeat=options.heartbeat)
    study = load_study(storage, options.study_name)
    config = study_config(study)
    path = study_bundle(study, options.bundle)
    with local_actors(
        path,
        device_kind=config.device.kind,
        cpu_actors=cpu_actors,
        actor_cpus=actor_cpus,
    ) as actors:
        with stop_on_signals(actors):
            return ray.get([a.run_trials.remote(options) for a in actors])
