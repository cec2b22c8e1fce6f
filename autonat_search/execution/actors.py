"""Ray actors that own a device and load a bundle once, the local pool of them, and an
evaluation fanned out over the pool (statistics of shares of the chunks, merged)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
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
    "start_actors",
]


class BundleActor:
    """One device, one bundle loaded once; runs trials or shares of an evaluation."""

    def __init__(self, bundle: str, device_kind: str, threads: int, name: str = "") -> None:
        torch.set_num_threads(max(1, threads))
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is too many
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
        return {"started": summary.started, **summary.states}

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
    node = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    resources: dict[str, float] = {"num_cpus": actor_cpus}
    if device_kind == "cuda":
        resources["num_gpus"] = 1
    actors = []
    for index in range(count):
        name = names[index] if index < len(names) else ""
        options: dict[str, Any] = {"scheduling_strategy": node, **resources}
        if name:
            options["name"] = name
        actors.append(
            RemoteBundleActor.options(**options).remote(
                str(bundle), device_kind, max(1, int(actor_cpus)), name
            )
        )
    return actors


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
    actors: Sequence[Any], strategy: GenerationStrategy, n: int, plan: SamplePlan
) -> FeatureStats:
    """FID statistics of ``n`` samples, chunks shared out over ``actors`` and merged."""
    shares = split_evenly(plan.chunks_between(0, n), len(actors))
    futures = [
        actor.evaluate.remote(strategy.to_reference_dict(), share, plan)
        for actor, share in zip(actors, shares, strict=False)
    ]
    parts = [FeatureStats.from_numpy_dict(r) for r in ray.get(futures)]
    return sum(parts[1:], start=parts[0])
