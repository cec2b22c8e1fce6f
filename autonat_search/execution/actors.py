"""Ray actors that own a device and load a bundle once, the local pool of them, and an
evaluation fanned out over the pool (statistics of shares of the chunks, merged)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from autonat_search.errors import ConfigError
from autonat_search.execution.evaluation import (
    BatchSizer,
    SamplePlan,
    evaluate_chunks,
    split_evenly,
)
from autonat_search.execution.progress import show_progress_lines
from autonat_search.execution.ray_session import ensure_ray
from autonat_search.execution.trial_loop import WorkerOptions, run_study_trials
from nat_core.fid import FeatureStats
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

__all__ = [
    "BundleActor",
    "RemoteBundleActor",
    "ensure_ray",
    "evaluate_on_actors",
    "local_actor_count",
    "local_actors",
    "pinned_actors",
    "start_actors",
]


class BundleActor:
    """One device, one bundle loaded once; runs trials or shares of an evaluation."""

    def __init__(self, bundle: str, device_kind: str, threads: int, name: str = "") -> None:
        torch.set_num_threads(max(1, threads))
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # ours say more, per trial
        show_progress_lines()
        if device_kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device.kind is cuda but this actor sees no CUDA device")
        self.device = torch.device("cuda" if device_kind == "cuda" else "cpu")
        self.bundle = load_bundle(Path(bundle), device=self.device)
        self.stop_event = threading.Event()
        self.abort_event = threading.Event()
        self.name = name
        self.sizer = BatchSizer()

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def stop(self, now: bool = False) -> None:
        """No new trial; with ``now`` the running one is failed and re-run elsewhere."""
        self.stop_event.set()
        if now:
            self.abort_event.set()

    def run_trials(self, options: WorkerOptions) -> dict[str, Any]:
        summary = run_study_trials(
            self.bundle,
            options,
            device_name=self.device_name(),
            stop=self.stop_event,
            abort=self.abort_event,
            actor=self.name or None,
        )
        node = ray.get_runtime_context().get_node_id()
        return {"started": summary.started, **summary.states, "node": node}

    def evaluate(
        self, strategy: dict[str, list[float]], chunks: list[int], plan: SamplePlan
    ) -> dict[str, np.ndarray]:
        stats = evaluate_chunks(
            self.bundle,
            GenerationStrategy.from_reference_dict(strategy),
            chunks,
            plan,
            sizer=self.sizer,
        )
        return stats.to_numpy_dict()


# Two calls at once: ``stop`` must reach an actor while ``run_trials`` runs. (The ignore:
# Ray's typed overloads of ``ray.remote`` omit the actor options of this form.)
RemoteBundleActor = ray.remote(max_concurrency=2)(BundleActor)  # type: ignore[call-overload]


def start_actors(
    bundle: Path,
    *,
    device_kind: str,
    count: int,
    actor_cpus: float = 1.0,
    names: Sequence[str] = (),
) -> list[Any]:
    """``count`` actors on this node (one GPU each where ``device_kind`` is cuda); an actor
    given a name is reachable as ``ray.get_actor(name)`` and records it on its trials."""
    resources: dict[str, float] = {"num_cpus": actor_cpus}
    if device_kind == "cuda":
        resources["num_gpus"] = 1
    node_id = ray.get_runtime_context().get_node_id()
    return pinned_actors(bundle, node_id, device_kind, count, resources, names=names)


def local_actor_count(device_kind: str, cpu_actors: int) -> int:
    """One actor per GPU of this node (``device_kind`` cuda), else ``cpu_actors``."""
    if device_kind == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError("the study runs on cuda, but this node has no CUDA device")
        return count
    if cpu_actors < 1:
        raise ConfigError(f"--cpu-actors must be >= 1 on a CPU study, got {cpu_actors}")
    return cpu_actors


def pinned_actors(
    bundle: Path,
    node_id: str,
    device_kind: str,
    count: int,
    resources: dict[str, float],
    *,
    names: Sequence[str] = (),
) -> list[Any]:
    """``count`` actors on the Ray node ``node_id`` (and nowhere else), each with
    ``resources`` (``num_cpus``, and ``num_gpus`` for a GPU actor); an actor given a name is
    reachable as ``ray.get_actor(name)`` and records it on its trials."""
    node = NodeAffinitySchedulingStrategy(node_id, soft=False)
    threads = max(1, int(resources.get("num_cpus", 1)))
    actors = []
    for index in range(count):
        name = names[index] if index < len(names) else ""
        options: dict[str, Any] = {"scheduling_strategy": node, **resources}
        if name:
            options["name"] = name
        actors.append(
            RemoteBundleActor.options(**options).remote(str(bundle), device_kind, threads, name)
        )
    return actors


@contextmanager
def local_actors(
    bundle: Path,
    *,
    device_kind: str,
    cpu_actors: int,
    actor_cpus: float = 1.0,
) -> Iterator[list[Any]]:
    """One actor per GPU of this node (``device_kind`` cuda) or ``cpu_actors`` CPU actors."""
    count = local_actor_count(device_kind, cpu_actors)
    actors = start_actors(bundle, device_kind=device_kind, count=count, actor_cpus=actor_cpus)
    try:
        ray.get([a.device_name.remote() for a in actors])  # surfaces load errors now
        yield actors
    finally:
        for actor in actors:
            ray.kill(actor)


def evaluate_on_actors(
    actors: Sequence[Any],
    strategy: GenerationStrategy,
    n: int,
    plan: SamplePlan,
    *,
    progress: Callable[[int], None] | None = None,
) -> FeatureStats:
    """FID statistics of ``n`` samples, chunks shared out over ``actors`` and merged.

    Each actor works through its share one batch of chunks at a time (one call in flight
    per actor), so that ``progress(chunks_done)`` can follow; the parts are merged in chunk
    order, whatever order they finish in."""
    shares = split_evenly(plan.chunks_between(0, n), len(actors))
    per_call = plan.batch_size // plan.chunk
    pieces = [[share[i : i + per_call] for i in range(0, len(share), per_call)] for share in shares]
    reference = strategy.to_reference_dict()
    results: list[list[FeatureStats]] = [[] for _ in pieces]
    in_flight: dict[Any, int] = {}

    def submit(index: int) -> None:
        piece = pieces[index][len(results[index])]
        in_flight[actors[index].evaluate.remote(reference, piece, plan)] = index

    for index in range(len(pieces)):
        submit(index)
    while in_flight:
        (done,), _ = ray.wait(list(in_flight), num_returns=1)
        index = in_flight.pop(done)
        results[index].append(FeatureStats.from_numpy_dict(ray.get(done)))
        if progress is not None:
            progress(len(pieces[index][len(results[index]) - 1]))
        if len(results[index]) < len(pieces[index]):
            submit(index)
    parts = [part for share in results for part in share]
    return sum(parts[1:], start=parts[0])
