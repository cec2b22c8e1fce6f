"""Storage URL -> Optuna storage with heartbeat and retry; storage errors converted once.

* PostgreSQL (``postgresql+psycopg2://user:pass@host/db``) for real use: connections are
  pre-pinged and recycled.
* The embedded default, SQLite through ``RDBStorage``: WAL journal and a busy timeout, so
  several worker processes on one machine share it.

Heartbeat: a trial's worker records a heartbeat every ``heartbeat_interval`` seconds while
it runs (``Study.optimize`` does this); a RUNNING trial silent for ``grace_period`` seconds
is failed by the next worker that looks, and re-enqueued (``RetryHeartbeatStaleTrialCallback``).
Storage errors are converted here, once, into ``StorageError`` with the password hidden.

The URL comes from the command line, ``$AUTONAT_STORAGE``, or the file named by
``$AUTONAT_STORAGE_FILE`` (e.g. a Docker secret), in that order; a password belongs in the
environment or a file (libpq also reads ``PGPASSWORD`` and ``~/.pgpass``), never in a command.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from autonat_search import records
from autonat_search.errors import StorageError, StudyError
from autonat_search.storage.probe import EMBEDDED_DEFAULT, STORAGE_ENV, redact, resolve_storage_url
from autonat_search.storage.rerun import RerunFailedTrial
from autonat_search.storage.resilient import DEFAULT_MAX_WAIT, ResilientRDBStorage

__all__ = [
    "BudgetStanding",
    "budget_standing",
    "EMBEDDED_DEFAULT",
    "STORAGE_ENV",
    "HeartbeatSettings",
    "guarded",
    "load_study",
    "open_storage",
    "redact",
    "resolve_storage_url",
    "rung_values",
    "running_trials_without_heartbeat",
    "sqlite_file",
    "storage_url_of",
    "trial_state",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class HeartbeatSettings:
    """A study's heartbeat (stored in its config, one value for every worker)."""

    interval: int = 30
    grace_period: int = 120
    max_retry: int = 3


def sqlite_file(url: str) -> Path | None:
    """The database file of an embedded (SQLite) store; None for a server."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise StorageError("the embedded store needs a file: sqlite:///path/to/file.db")
    return Path(parsed.database)


def _prepare_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def open_storage(
    url: str | None = None,
    *,
    heartbeat: HeartbeatSettings | None = None,
    max_wait: float = DEFAULT_MAX_WAIT,
) -> ResilientRDBStorage:
    """Optuna ``RDBStorage`` for ``url`` (or ``$AUTONAT_STORAGE``, or the embedded default);
    its calls wait out a database outage of up to ``max_wait`` seconds (``resilient``)."""
    url = resolve_storage_url(url)
    heartbeat = heartbeat or HeartbeatSettings()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a storage URL: {redact(url)}") from None
    engine_kwargs: dict[str, Any]
    sqlite_path = sqlite_file(url)
    if sqlite_path is not None:
        _prepare_sqlite(sqlite_path)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif parsed.drivername.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "pool_recycle": 300}
    else:
        raise StorageError(
            f"unsupported storage {redact(url)}: use postgresql+psycopg2://... or sqlite:///..."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return guarded(
            lambda: ResilientRDBStorage(
                url,
                max_wait=max_wait,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
                heartbeat_stale_trial_callback=RerunFailedTrial(max_retry=heartbeat.max_retry),
            ),
            url,
        )


def guarded(action: Callable[[], _T], url: str) -> _T:
    """Run a storage action; database errors become one StorageError without the password."""
    try:
        return action()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"storage {redact(url)}: {reason}") from None


def storage_url_of(storage: RDBStorage) -> str:
    return str(storage.url)


_STATE_COUNTS = sqlalchemy.text(
    "SELECT t.state, COUNT(*) FROM trials t WHERE t.study_id = :study GROUP BY t.state"
)


def _count_states(connection: sqlalchemy.Connection, study_id: int) -> Counter[TrialState]:
    """How many trials of the study are in each state, in one query (Optuna's
    ``get_all_trials`` loads every trial's parameters and attributes). Reads Optuna's
    ``trials`` table, like the queries below."""
    rows = connection.execute(_STATE_COUNTS, {"study": study_id}).all()
    return Counter({TrialState[str(state)]: int(n) for state, n in rows})


_TRIAL_STATE = sqlalchemy.text("SELECT t.state FROM trials t WHERE t.trial_id = :trial")


def trial_state(storage: ResilientRDBStorage, trial_id: int) -> TrialState:
    """A trial's state as stored now, in one query (Optuna's ``get_trial`` takes six: the
    trial and each of its collections). Reads Optuna's ``trials`` table, like the query
    above."""

    def query() -> TrialState:
        with storage.engine.connect() as connection:
            state = connection.execute(_TRIAL_STATE, {"trial": trial_id}).scalar_one_or_none()
        if state is None:
            raise KeyError(f"no trial with id {trial_id}")
        return TrialState[str(state)]

    return storage.retrying(query)


@dataclass(frozen=True)
class BudgetStanding:
    """A study's finished (COMPLETE + PRUNED), RUNNING and WAITING (enqueued) trials against
    its budget."""

    finished: int
    running: int
    budget: int
    waiting: int = 0

    @property
    def spent(self) -> bool:
        return self.finished >= self.budget

    @property
    def has_free_slot(self) -> bool:
        """Whether one more trial may start: running trials hold their slots."""
        return self.finished + self.running < self.budget


_STUDY_USER_ATTR = sqlalchemy.text(
    "SELECT a.value_json FROM study_user_attributes a WHERE a.study_id = :study AND a.key = :key"
)


@dataclass(frozen=True)
class _StoredAttrs:
    user_attrs: dict[str, Any]


def budget_standing(storage: ResilientRDBStorage, study: optuna.Study) -> BudgetStanding:
    """Where the study stands against its budget (call under the study lock to act on it):
    two queries on one connection, the budget attribute alone (Optuna reads all of the
    study's attributes, its config among them) and the count of trials by state. Reads
    Optuna's ``study_user_attributes`` table, like the queries above its ``trials``."""
    study_id = study._study_id

    def read() -> tuple[str | None, Counter[TrialState]]:
        with storage.engine.connect() as connection:
            stored = connection.execute(
                _STUDY_USER_ATTR, {"study": study_id, "key": records.STUDY_BUDGET}
            ).scalar_one_or_none()
            counts = _count_states(connection, study_id)
        return stored, counts

    stored, counts = storage.retrying(read)
    attrs = {} if stored is None else {records.STUDY_BUDGET: json.loads(stored)}
    budget = records.read_budget(_StoredAttrs(attrs))
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    return BudgetStanding(
        finished, counts[TrialState.RUNNING], budget, waiting=counts[TrialState.WAITING]
    )


_RUNNING_WITHOUT_HEARTBEAT = sqlalchemy.text(
    "SELECT t.trial_id FROM trials t WHERE t.study_id = :study AND t.state = 'RUNNING' "
    "AND NOT EXISTS (SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)"
)


def running_trials_without_heartbeat(storage: ResilientRDBStorage, study_id: int) -> list[int]:
    """Trial ids of RUNNING trials that never recorded a heartbeat. Optuna has no public
    query for these: this reads its schema (tables ``trials`` and ``trial_heartbeats``),
    which the trial-loop tests exercise on both back ends."""

    def query() -> list[int]:
        with storage.engine.connect() as connection:
            rows = connection.execute(_RUNNING_WITHOUT_HEARTBEAT, {"study": study_id})
            return [int(trial_id) for trial_id in rows.scalars().all()]

    return storage.retrying(query)


_RUNG_VALUES = sqlalchemy.text(
    "SELECT t.number, v.intermediate_value, v.intermediate_value_type "
    "FROM trial_intermediate_values v JOIN trials t ON t.trial_id = v.trial_id "
    "WHERE t.study_id = :study AND v.step = :step AND t.state <> 'FAIL'"
)


def rung_values(
    storage: ResilientRDBStorage, study: optuna.Study, step: int
) -> list[tuple[int, float]]:
    """(trial number, value) of every trial of the study, failed ones excepted, that reported
    at ``step``: what the rung pruner compares, in one query (``study.get_trials`` reads every
    unfinished trial with its parameters and attributes, seven queries). Reads Optuna's
    ``trials`` and ``trial_intermediate_values`` tables; the stored value is decoded as
    Optuna decodes it."""
    model = models.TrialIntermediateValueModel

    def query() -> list[tuple[int, float]]:
        with storage.engine.connect() as connection:
            rows = connection.execute(_RUNG_VALUES, {"study": study._study_id, "step": step})
            return [
                (
                    int(number),
                    model.stored_repr_to_intermediate_value(
                        value, model.TrialIntermediateValueType[str(kind)]
                    ),
                )
                for number, value, kind in rows.all()
            ]

    return storage.retrying(query)


def load_study(storage: RDBStorage, name: str) -> optuna.Study:
    try:
        return guarded(
            lambda: optuna.load_study(study_name=name, storage=storage), storage_url_of(storage)
        )
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StudyError(
            f"no study named {name!r} in {redact(storage_url_of(storage))}; "
            f"known: {', '.join(known) or 'none'}"
        ) from None
