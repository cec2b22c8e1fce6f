"""Ray actors that own a device, load a bundle once, and run trials or evaluation shares.

``run_worker`` is what ``autonat-search worker`` does on one node: join (or start) a Ray
cluster, start one actor per local GPU (or ``cpu_actors`` CPU actors), and let each pull
trials until the study's budget is spent. SIGINT/SIGTERM stop new trials; running ones
finish and are recorded.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from autonat_search.config import FidelityConfig, SamplerConfig, StudyConfig
from autonat_search.errors import BundleMismatchError, ConfigError
from autonat_search.evaluation import SamplePlan, evaluate_chunks, split_evenly
from autonat_search.objective import FidObjective
from autonat_search.space import build_space
from autonat_search.storage import HeartbeatSettings, StudyLock, load_study, open_storage
from autonat_search.study import FINGERPRINT_ATTR, bundle_path, study_config
from autonat_search.trial_loop import run_trial_loop
from nat_core.bundle import read_bundle
from nat_core.fid import FeatureStats
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

log = logging.getLogger(__name__)


def build_sampler(config: SamplerConfig, *, seed: int) -> optuna.samplers.BaseSampler:
    if config.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if config.name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if config.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def build_pruner(config: FidelityConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.rungs[0], reduction_factor=config.reduction_factor
        )
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def actor_seed(seed: int) -> int:
    """Each actor's sampler gets its own stream, so parallel actors do not propose twins."""
    entropy = uuid.uuid4().int & (2**63 - 1)
    return int(np.random.SeedSequence([seed, entropy]).generate_state(1)[0])


def check_fingerprint(path: Path, recorded: dict[str, Any]) -> None:
    actual = read_bundle(path).fingerprint()
    if actual == recorded:
        return
    if actual["content"] != recorded["content"]:
        raise BundleMismatchError(f"bundle {path} differs from the study's bundle file")
    for role, info in recorded["files"].items():
        if actual["files"].get(role) != info:
            raise BundleMismatchError(
                f"bundle {path}: {role} differs from the file the study recorded "
                f"(size {info['size']}, sha256 {info['sha256'][:12]}...)"
            )
    raise BundleMismatchError(f"bundle {path} differs from the study's bundle")


@dataclass(frozen=True)
class WorkerOptions:
    storage_url: str
    study_name: str
    bundle: Path | None = None
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    poll_seconds: float = 2.0


class BundleActor:
    """One device, one bundle loaded once; runs trials or shares of an evaluation."""

    def __init__(self, bundle: str, device_kind: str, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is too many
        if device_kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device.kind is cuda but this actor sees no CUDA device")
        path = Path(bundle)
        self.device = torch.device("cuda" if device_kind == "cuda" else "cpu")
        self.bundle = load_bundle(path, device=self.device)
        self.stop_event = threading.Event()

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def stop(self) -> None:
        self.stop_event.set()

    def run_trials(self, options: WorkerOptions) -> dict[str, Any]:
        storage = open_storage(options.storage_url, heartbeat=options.heartbeat)
        study = load_study(storage, options.study_name)
        config = study_config(study)
        study = optuna.load_study(
            study_name=options.study_name,
            storage=storage,
            sampler=build_sampler(config.sampler, seed=actor_seed(config.sampler.seed)),
            pruner=build_pruner(config.fidelity),
        )
        objective = FidObjective(
            bundle=self.bundle,
            space=build_space(config.space, steps=config.steps),
            config=config,
            device_name=self.device_name(),
        )
        summary = run_trial_loop(
            study,
            objective,
            StudyLock(options.storage_url, options.study_name),
            storage=storage,
            stop=self.stop_event,
            poll_seconds=options.poll_seconds,
        )
        return {"started": summary.started, **summary.states}

    def evaluate(
        self, strategy: dict[str, list[float]], chunks: list[int], plan: SamplePlan
    ) -> dict[str, np.ndarray]:
        stats = evaluate_chunks(
            self.bundle, GenerationStrategy.from_reference_dict(strategy), chunks, plan
        )
        return stats.to_numpy_dict()


RemoteBundleActor = ray.remote(max_concurrency=2)(BundleActor)


def ensure_ray(address: str | None, *, num_cpus: int | None = None) -> None:
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)


@contextmanager
def local_actors(
    bundle: Path,
    *,
    device_kind: str,
    cpu_actors: int,
    actor_cpus: float = 1.0,
) -> Iterator[list[Any]]:
    """One actor per GPU of this node (``device_kind`` cuda) or ``cpu_actors`` CPU actors."""
    node = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    if device_kind == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError("the study runs on cuda, but this node has no CUDA device")
        resources: dict[str, float] = {"num_gpus": 1, "num_cpus": actor_cpus}
    else:
        if cpu_actors < 1:
            raise ConfigError(f"--cpu-actors must be >= 1 on a CPU study, got {cpu_actors}")
        count, resources = cpu_actors, {"num_cpus": actor_cpus}
    actors = [
        RemoteBundleActor.options(scheduling_strategy=node, **resources).remote(
            str(bundle), device_kind, max(1, int(actor_cpus))
        )
        for _ in range(count)
    ]
    try:
        ray.get([a.device_name.remote() for a in actors])  # surfaces load errors now
        yield actors
    finally:
        for actor in actors:
            ray.kill(actor)


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
    config: StudyConfig = study_config(study)
    path = options.bundle or bundle_path(study)
    check_fingerprint(path, study.user_attrs[FINGERPRINT_ATTR])
    with local_actors(
        path,
        device_kind=config.device.kind,
        cpu_actors=cpu_actors,
        actor_cpus=actor_cpus,
    ) as actors:
        with stop_on_signals(actors):
            return ray.get([a.run_trials.remote(options) for a in actors])


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
