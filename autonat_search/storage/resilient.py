"""Optuna's ``RDBStorage`` that outlives database outages.

Every storage call retries with back-off while the database is unreachable (a connection
error: ``OperationalError``, ``InterfaceError`` or a ``DBAPIError`` whose connection was
invalidated, raised directly or wrapped in Optuna's ``StorageInternalError``), for at most
``max_wait`` seconds in all; then one ``StorageError`` says the database is unreachable and
for how long it was tried. Other errors pass unchanged.

The retried calls are idempotent (reads, attribute and intermediate-value upserts, the
heartbeat) except two, handled here:

* ``set_trial_state_values`` (a trial's tell): if the first attempt committed but its answer
  was lost, the retry finds the trial finished; when it finished with exactly the state and
  values asked for, the call succeeded. Otherwise the trial was finished by someone else
  (a stale trial failed by another worker) and ``UpdateFinishedTrialError`` is raised.
* ``create_new_trial``: a lost answer may leave one extra RUNNING trial that never gets a
  heartbeat; the trial loop fails such orphans and re-runs them (``trial_loop``).

``record_heartbeat`` is tried once (``record_heartbeat_once`` returns whether it worked): a
heartbeat is periodic, and the heartbeat keeper decides what a missed one means. Both
heartbeat methods write it in one statement (``trial_writes.write_heartbeat``).

Grouped writes: inside ``grouped_writes(trial_id)`` the parameters, user attributes and
intermediate values this thread sets on that trial are kept, and written when the block
ends, in one transaction (``trial_writes``) instead of one each; ``set_trial_user_attrs``
writes several attributes at once. Both are retried like the other calls (the writes are
upserts, and a retry that finds its parameters already inserted is ignored, as Optuna
ignores it for one).

This module is the one place that overrides ``RDBStorage`` methods (its list of retried
method names follows Optuna 5.0's ``RDBStorage``); ``tests/autonat_search/storage/
test_resilient.py`` tests it, and ``tests/reliability/test_storage_outage.py`` runs it
through real PostgreSQL restarts and outages.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from optuna.distributions import BaseDistribution
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from autonat_search.errors import StorageError
from autonat_search.storage.probe import DEFAULT_MAX_WAIT, redact
from autonat_search.storage.trial_writes import (
    PendingParam,
    TrialWrites,
    write_heartbeat,
    write_note,
    write_trial,
)

__all__ = [
    "DEFAULT_MAX_WAIT",
    "ResilientRDBStorage",
    "is_connection_error",
    "retry_while_unreachable",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "get_n_trials",
    # Optuna's study wraps this storage in its ``_CachedStorage``, which calls these private
    # methods of its backend (Optuna 5.0); they must retry too.
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_get_stale_trial_ids",
)
_groups = threading.local()


def _open_groups() -> dict[tuple[int, int], TrialWrites]:
    """This thread's open ``grouped_writes`` blocks: (id of the storage, trial id) -> writes."""
    groups: dict[tuple[int, int], TrialWrites] = _groups.__dict__.setdefault("open", {})
    return groups


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` (or an error it wraps) means the database could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class ResilientRDBStorage(RDBStorage):
    """``RDBStorage`` whose calls wait out a database outage of up to ``max_wait`` seconds."""

    def __init__(self, url: str, *, max_wait: float = DEFAULT_MAX_WAIT, **kwargs: Any) -> None:
        self.max_wait = max_wait
        self._shown_url = url
        _retrying(self, lambda: RDBStorage.__init__(self, url, **kwargs))

    def retrying(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` (storage work of the caller's own) with this storage's retries."""
        return _retrying(self, action)

    @contextmanager
    def grouped_writes(self, trial_id: int) -> Iterator[None]:
        """Parameters, user and system attributes and intermediate values this thread sets on
        the trial inside the block are written when it ends, in one transaction (a nested
        block joins the outer one). When the block raises they are still written, as they
        would have been one by one, but tried once: an error of that write is logged, and the
        block's error raised."""
        groups = _open_groups()
        key = (id(self), trial_id)
        if key in groups:
            yield
            return
        writes = groups[key] = TrialWrites()
        try:
            yield
        except Exception:
            try:
                write_trial(self, trial_id, writes)
            except Exception as error:
                self.remove_session()
                log.warning("trial id %d: writes not recorded (%s)", trial_id, error)
            raise
        else:
            self._write_trial(trial_id, writes)
        finally:
            del groups[key]

    def set_trial_user_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        """Several user attributes of a RUNNING trial, in one transaction."""
        pending = self._open_group(trial_id)
        if pending is not None:
            pending.user_attrs.update(attrs)
            return
        self._write_trial(trial_id, TrialWrites(user_attrs=dict(attrs)))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        pending = self._open_group(trial_id)
        if pending is not None:  # e.g. TPE's relative parameters, at the trial's first suggest
            pending.system_attrs[key] = value
            return
        _retrying(self, lambda: RDBStorage.set_trial_system_attr(self, trial_id, key, value))

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        pending = self._open_group(trial_id)
        if pending is not None:
            pending.intermediate_values[step] = intermediate_value
            return
        _retrying(
            self,
            lambda: RDBStorage.set_trial_intermediate_value(
                self, trial_id, step, intermediate_value
            ),
        )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        pending = self._open_group(trial_id)
        if pending is not None:
            pending.user_attrs[key] = value
            return
        _retrying(self, lambda: RDBStorage.set_trial_user_attr(self, trial_id, key, value))

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        # Optuna's cache calls this for ``set_trial_param`` (RDBStorage's own calls it too).
        pending = self._open_group(trial_id)
        if pending is not None:
            param = PendingParam(
                param_name, param_value_internal, distribution, previous_distribution
            )
            pending.params.append(param)
            return
        _retrying(
            self,
            lambda: RDBStorage._set_trial_param(
                self,
                trial_id,
                param_name,
                param_value_internal,
                distribution,
                previous_distribution,
            ),
        )

    def _open_group(self, trial_id: int) -> TrialWrites | None:
        return _open_groups().get((id(self), trial_id))

    def _write_trial(self, trial_id: int, writes: TrialWrites) -> None:
        _retrying(self, lambda: write_trial(self, trial_id, writes))

    def write_note(
        self, study_id: int, *, version_key: str, chunk_prefix: str, chunks: list[str]
    ) -> None:
        """A note as study system attributes in one transaction (``trial_writes.write_note``;
        a retry after a lost answer only counts the version one further)."""
        _retrying(
            self,
            lambda: write_note(
                self, study_id, version_key=version_key, chunk_prefix=chunk_prefix, chunks=chunks
            ),
        )

    def record_heartbeat_once(self, trial_id: int) -> bool:
        try:
            write_heartbeat(self, trial_id)
        except Exception as error:
            if not is_connection_error(error):
                raise
            self.remove_session()
            return False
        return True

    def record_heartbeat_retrying(self, trial_id: int) -> None:
        _retrying(self, lambda: write_heartbeat(self, trial_id))

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                if attempts > 1 and _finished_as(self, trial_id, state, values):
                    return True  # the earlier attempt committed; its answer was lost
                raise

        return _retrying(self, attempt)


def _finished_as(
    storage: RDBStorage, trial_id: int, state: TrialState, values: Sequence[float] | None
) -> bool:
    trial = RDBStorage.get_trial(storage, trial_id)
    if trial.state != state:
        return False
    stored = trial.values or []
    return len(stored) == len(values or []) and all(
        math.isclose(a, b, rel_tol=1e-12) or (math.isnan(a) and math.isnan(b))
        for a, b in zip(stored, values or [], strict=True)
    )


def _retrying(storage: ResilientRDBStorage, action: Callable[[], _T]) -> _T:
    def reset() -> None:
        if hasattr(storage, "scoped_session"):
            storage.remove_session()

    return retry_while_unreachable(
        action, url=storage._shown_url, max_wait=storage.max_wait, on_error=reset
    )


def retry_while_unreachable(
    action: Callable[[], _T],
    *,
    url: str,
    max_wait: float,
    on_error: Callable[[], None] | None = None,
) -> _T:
    """``action()``, retried with back-off on connection errors for at most ``max_wait`` s."""
    started = time.monotonic()
    delay = 0.2
    while True:
        try:
            return action()
        except Exception as error:
            if not is_connection_error(error):
                raise
            waited = time.monotonic() - started
            if waited >= max_wait:
                raise StorageError(
                    f"storage {redact(url)} unreachable: tried for {waited:.0f} s "
                    f"({_first_line(error)})"
                ) from error
            log.warning(
                "storage unreachable (%s); retrying for up to %.0f s more",
                _first_line(error),
                max_wait - waited,
            )
            if on_error is not None:
                on_error()
            time.sleep(min(delay, max(0.0, max_wait - waited)))
            delay = min(delay * 2, 5.0)


def _first_line(error: BaseException) -> str:
    cause: BaseException = error
    if isinstance(error, StorageInternalError) and error.__cause__ is not None:
        cause = error.__cause__
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _wrap(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def retried(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return _retrying(self, lambda: method(self, *args, **kwargs))

    return retried


for _name in _RETRIED:
    if hasattr(RDBStorage, _name):
        setattr(ResilientRDBStorage, _name, _wrap(_name))
