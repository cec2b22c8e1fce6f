"""Joining a Ray cluster, or starting a local one whose processes outlive a group signal.

``timeout``, systemd and Slurm stop a job by sending SIGTERM to its whole process group. A
local Ray started by ``ray.init`` puts its GCS server and raylet (and, through the raylet,
every actor process) into the driver's group, so the signal kills them at once, before the
driver can let its trials finish: the driver then hangs on the dead GCS. On Windows Ray
already starts them in a new process group; here they are started in a new session, the
same way, and stopped by ``ray.shutdown()`` after the driver's work is done (they still die
with the driver, through Ray's kernel fate-sharing, if it is killed).

Ray has no public option for this: ``_own_session`` swaps the class Ray's process launcher
uses (``ray._private.services.ConsolePopen``) while the local cluster starts. This is the
one place that touches Ray internals; ``tests/reliability/test_signals.py`` checks that the
raylet's process group is not the driver's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

__all__ = ["ensure_ray"]


@contextmanager
def _own_session() -> Iterator[None]:
    from ray._private import services

    original = services.ConsolePopen

    class _InOwnSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["start_new_session"] = True
            super().__init__(*args, **kwargs)

    services.ConsolePopen = _InOwnSession  # type: ignore[misc]
    try:
        yield
    finally:
        services.ConsolePopen = original  # type: ignore[misc]


def ensure_ray(address: str | None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start a local one; nothing if Ray is running.

    Without an address a new local instance is started (``address="local"``): plain
    ``ray.init()`` would join whatever ``ray start`` left running on this machine."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    with _own_session():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
