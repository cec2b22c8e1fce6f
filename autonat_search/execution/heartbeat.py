"""A running trial's heartbeat, kept by its worker, and the checks its work makes.

The keeper records a heartbeat every ``interval`` seconds (one attempt each, retried every
second while the database is unreachable). When no heartbeat could be recorded for
``grace_period - interval`` seconds, other workers may soon fail the trial as stale (they do
at ``grace_period``), so the keeper declares it *lost* and never records for it again: the
trial will be failed and re-run elsewhere, and its work here stops at the next check.

The work checks with ``check_trial_alive()`` between units of work (batches, rungs). It
raises ``HeartbeatLost`` when the keeper gave the trial up, and ``TrialInterrupted`` when
the worker was told to stop at once (a second SIGINT/SIGTERM).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = [
    "HeartbeatKeeper",
    "HeartbeatLost",
    "TrialInterrupted",
    "check_trial_alive",
    "keeping_heartbeat",
]

log = logging.getLogger(__name__)


class HeartbeatLost(Exception):
    """The trial's heartbeat could not be recorded for too long; others will re-run it."""


class TrialInterrupted(Exception):
    """The worker was told to stop now; the trial is failed and re-run elsewhere."""


class _HeartbeatStorage(Protocol):
    def record_heartbeat_once(self, trial_id: int) -> bool: ...


class HeartbeatKeeper:
    """Records one trial's heartbeat on its own thread until ``stop()``."""

    def __init__(
        self,
        storage: _HeartbeatStorage,
        trial_id: int,
        *,
        interval: float,
        grace_period: float,
        abort: threading.Event | None = None,
    ) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval
        self._give_up_after = max(interval, grace_period - interval)
        self._abort = abort or threading.Event()
        self._done = threading.Event()
        self.lost = threading.Event()
        self.last_recorded = time.monotonic()  # the caller recorded one before starting
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def start(self) -> HeartbeatKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def check(self) -> None:
        if self.lost.is_set():
            raise HeartbeatLost(
                f"no heartbeat recorded for {self._give_up_after:.0f} s (storage unreachable): "
                "the trial is left to be failed and re-run"
            )
        if self._abort.is_set():
            raise TrialInterrupted("the worker was told to stop at once")

    def _run(self) -> None:
        wait = self._interval
        while not self._done.wait(wait):
            try:
                recorded = self._storage.record_heartbeat_once(self._trial_id)
            except Exception as error:  # a bug, or a database refusing the write
                log.warning("heartbeat of trial id %d: %s", self._trial_id, error)
                recorded = False
            now = time.monotonic()
            if recorded:
                self.last_recorded, wait = now, self._interval
                continue
            if now - self.last_recorded >= self._give_up_after:
                log.warning(
                    "trial id %d: no heartbeat for %.0f s; giving the trial up",
                    self._trial_id,
                    now - self.last_recorded,
                )
                self.lost.set()
                return
            wait = min(1.0, self._interval)


_current = threading.local()


@contextmanager
def keeping_heartbeat(keeper: HeartbeatKeeper) -> Iterator[HeartbeatKeeper]:
    """Keep ``keeper`` running, and current for ``check_trial_alive`` on this thread."""
    keeper.start()
    _current.keeper = keeper
    try:
        yield keeper
    finally:
        _current.keeper = None
        keeper.stop()


def check_trial_alive() -> None:
    """Raise ``HeartbeatLost`` or ``TrialInterrupted`` if this thread's trial must stop."""
    keeper: HeartbeatKeeper | None = getattr(_current, "keeper", None)
    if keeper is not None:
        keeper.check()
