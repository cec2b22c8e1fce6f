"""Where a worker's actors go: the Ray nodes alive now, how many actors a node takes (one per
GPU; on a CPU study ``--cpu-actors``, or one per CPU slot), actors pinned to one node, and the
cluster-wide pool that places actors on every node, including nodes that join later."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import ray
from ray.exceptions import RayActorError

from autonat_search.errors import ConfigError
from autonat_search.execution.actors import pinned_actors
from autonat_search.execution.trial_loop import WorkerOptions
from autonat_search.storage import fail_trials_of_actor

__all__ = [
    "ClusterPool",
    "NodeShare",
    "RayNode",
    "alive_nodes",
    "find_node",
    "node_actors",
    "node_share",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayNode:
    """A live Ray node and the resources it registered."""

    node_id: str
    address: str
    cpus: float
    gpus: int

    def describe(self) -> str:
        return f"node {self.node_id} ({self.address}, {self.cpus:g} CPUs, {self.gpus} GPUs)"


def alive_nodes() -> list[RayNode]:
    """The nodes of the connected Ray cluster that are alive now."""
    return [
        RayNode(
            node_id=node["NodeID"],
            address=node["NodeManagerAddress"],
            cpus=float(node["Resources"].get("CPU", 0)),
            gpus=int(node["Resources"].get("GPU", 0)),
        )
        for node in ray.nodes()
        if node["Alive"]
    ]


def find_node(node_id: str | None = None) -> RayNode:
    """The alive node ``node_id``; by default the node this process runs on."""
    wanted = node_id or ray.get_runtime_context().get_node_id()
    for node in alive_nodes():
        if node.node_id == wanted:
            return node
    raise ConfigError(f"no alive Ray node has the id {wanted}")


@dataclass(frozen=True)
class NodeShare:
    """How many actors a node takes, and the Ray resources of each."""

    count: int
    resources: dict[str, float] = field(default_factory=dict)


def node_share(
    node: RayNode, device_kind: str, *, cpu_actors: int | None, actor_cpus: float
) -> NodeShare:
    """One actor per GPU on a cuda study (its CPUs shared out if the node has few); on a CPU
    study ``cpu_actors`` actors, or one per ``actor_cpus`` CPUs of the node."""
    if actor_cpus <= 0:
        raise ConfigError(f"CPUs per actor must be > 0, got {actor_cpus}")
    if device_kind == "cuda":
        if node.gpus == 0:
            return NodeShare(0)
        cpus = min(actor_cpus, node.cpus / node.gpus)
        return NodeShare(node.gpus, {"num_gpus": 1, "num_cpus": cpus})
    if cpu_actors is not None:
        if cpu_actors < 1:
            raise ConfigError(f"--cpu-actors must be >= 1 on a CPU study, got {cpu_actors}")
        return NodeShare(cpu_actors, {"num_cpus": actor_cpus})
    return NodeShare(int(node.cpus // actor_cpus), {"num_cpus": actor_cpus})


@contextmanager
def node_actors(
    bundle: Path, node: RayNode, device_kind: str, share: NodeShare
) -> Iterator[list[Any]]:
    """The actors of one node, each with the bundle loaded; killed on exit."""
    if share.count == 0:
        if device_kind == "cuda":
            raise ConfigError(f"the study runs on cuda, but {node.describe()} has no CUDA device")
        raise ConfigError(f"{node.describe()} has no CPU slot for an actor")
    actors = pinned_actors(bundle, node.node_id, device_kind, share.count, share.resources)
    try:
        ray.get([a.device_name.remote() for a in actors])  # surfaces load errors now
        yield actors
    finally:
        for actor in actors:
            ray.kill(actor)


@dataclass
class _Placed:
    node: RayNode
    actor: Any
    name: str
    ready: bool = False


class ClusterPool:
    """Actors on every alive node of the cluster, each running the study's trial loop.

    ``place_new_nodes`` gives each node that has not been seen yet its share of actors
    (a node that leaves and rejoins has a new id). ``wait`` collects what finished: a
    result per actor whose loop ended. An actor lost (its process killed, or its node gone)
    fails the trials it was running at once, with the reason, and their re-runs are enqueued;
    ``replace_lost`` then starts a replacement on its node if that node is still alive (at
    most as many replacements per node as its share). Any other error is raised.
    """

    def __init__(
        self,
        bundle: Path,
        options: WorkerOptions,
        *,
        study: optuna.Study,
        device_kind: str,
        cpu_actors: int | None,
        actor_cpus: float,
        echo: Callable[[str], None],
    ) -> None:
        self.bundle, self.options, self.device_kind = bundle, options, device_kind
        self.study = study
        self.cpu_actors, self.actor_cpus, self.echo = cpu_actors, actor_cpus, echo
        self.seen: set[str] = set()
        self.actors: list[Any] = []  # every actor placed; a signal handler reads it
        self._pending: dict[Any, tuple[str, _Placed]] = {}  # ref -> (what, actor)
        self._prefix = f"autonat-{options.study_name}-{uuid.uuid4().hex[:8]}"
        self._shares: dict[str, NodeShare] = {}
        self._replacements: dict[str, int] = {}
        self._lost: list[_Placed] = []

    @property
    def active(self) -> int:
        return sum(what == "trials" for what, _ in self._pending.values())

    def _place(self, node: RayNode, count: int) -> None:
        share = self._shares[node.node_id]
        names = [f"{self._prefix}-{len(self.actors) + i}" for i in range(count)]
        actors = pinned_actors(
            self.bundle, node.node_id, self.device_kind, count, share.resources, names=names
        )
        for actor, name in zip(actors, names, strict=True):
            placed = _Placed(node, actor, name)
            self._pending[actor.device_name.remote()] = ("ready", placed)
            self._pending[actor.run_trials.remote(self.options)] = ("trials", placed)
        self.actors.extend(actors)

    def place_new_nodes(self) -> None:
        for node in alive_nodes():
            if node.node_id in self.seen:
                continue
            self.seen.add(node.node_id)
            share = node_share(
                node, self.device_kind, cpu_actors=self.cpu_actors, actor_cpus=self.actor_cpus
            )
            if share.count == 0:
                self.echo(f"{node.describe()}: no actor (nothing this study can use)")
                continue
            self._shares[node.node_id] = share
            self._replacements[node.node_id] = share.count
            self._place(node, share.count)
            self.echo(f"{node.describe()}: {share.count} actor(s) placed")

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Summaries of the actors whose trial loop ended within ``timeout`` seconds."""
        if not self._pending:
            return []
        done, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout)
        results = []
        for ref in done:
            what, placed = self._pending.pop(ref)
            try:
                value = ray.get(ref)
            except RayActorError as error:
                if error.actor_init_failed:
                    raise
                if what == "trials":
                    self._actor_lost(placed, str(error).strip().splitlines()[0])
                continue
            if what == "ready":
                placed.ready = True
                self.echo(f"{placed.node.describe()}: actor ready on {value}")
            else:
                results.append(value)
        return results

    def _actor_lost(self, placed: _Placed, why: str) -> None:
        reason = f"actor {placed.name} died: {why}"
        failed = fail_trials_of_actor(self.study, placed.name, reason)
        self.echo(f"{placed.node.describe()}: {reason}; trials {failed} failed and enqueued again")
        self._lost.append(placed)

    def replace_lost(self) -> None:
        """A replacement for each lost actor whose node is alive and has replacements left."""
        if not self._lost:
            return
        alive = {node.node_id for node in alive_nodes()}
        for placed in self._lost:
            node_id = placed.node.node_id
            if node_id in alive and self._replacements.get(node_id, 0) > 0:
                self._replacements[node_id] -= 1
                self._place(placed.node, 1)
                self.echo(f"{placed.node.describe()}: a replacement actor placed")
        self._lost.clear()

    def drop_unstarted(self) -> None:
        """Kill the actors that never started (e.g. a node whose resources stay taken)."""
        for ref, (what, placed) in list(self._pending.items()):
            if not placed.ready:
                del self._pending[ref]
                if what == "trials":
                    ray.kill(placed.actor)

    def kill_all(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self._pending.clear()
