"""Storage URL -> Optuna storage with heartbeat and retry, and the budget lock.

* PostgreSQL (``postgresql+psycopg2://user:pass@host/db``) for real use: connections are
  pre-pinged and recycled; the budget lock is a PostgreSQL advisory lock.
* The embedded default, SQLite through ``RDBStorage``: WAL journal and a busy timeout, so
  several worker processes on one machine share it; the budget lock is a file lock.

Heartbeat: a trial's worker records a heartbeat every ``heartbeat_interval`` seconds while
it runs (``Study.optimize`` does this); a RUNNING trial silent for ``grace_period`` seconds
is failed by the next worker that looks, and re-enqueued (``RetryHeartbeatStaleTrialCallback``).
Storage errors are converted here, once, into ``StorageError`` with the password hidden.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from autonat_search.errors import StorageError

STORAGE_ENV = "AUTONAT_STORAGE"
EMBEDDED_DEFAULT = "sqlite:///autonat-search.db"
T = TypeVar("T")


@dataclass(frozen=True)
class HeartbeatSettings:
    interval: int = 30
    grace_period: int = 120
    max_retry: int = 3


def resolve_storage_url(url: str | None) -> str:
    return url or os.environ.get(STORAGE_ENV) or EMBEDDED_DEFAULT


def redact(url: str) -> str:
    """The URL as it may be printed: password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable storage URL>"


def _sqlite_path(url: str) -> Path | None:
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
    url: str | None = None, *, heartbeat: HeartbeatSettings | None = None
) -> RDBStorage:
    """Optuna ``RDBStorage`` for ``url`` (or ``$AUTONAT_STORAGE``, or the embedded default)."""
    url = resolve_storage_url(url)
    heartbeat = heartbeat or HeartbeatSettings()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a storage URL: {redact(url)}") from None
    engine_kwargs: dict[str, Any]
    sqlite_path = _sqlite_path(url)
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
            lambda: RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=heartbeat.max_retry
                ),
            ),
            url,
        )


def guarded(action: Callable[[], T], url: str) -> T:
    """Run a storage action; database errors become one StorageError without the password."""
    try:
        return action()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"storage {redact(url)}: {reason}") from None


def storage_url_of(storage: RDBStorage) -> str:
    return str(storage.url)


def _lock_key(study_name: str) -> int:
    digest = hashlib.sha256(f"autonat-search:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StudyLock:
    """A cross-process lock per study: advisory lock (PostgreSQL) or file lock (SQLite).

    ``release()`` is idempotent, so a trial may release the lock as soon as it exists.
    """

    def __init__(self, storage_url: str, study_name: str) -> None:
        self._url = storage_url
        self._key = _lock_key(study_name)
        self._thread_lock = threading.Lock()
        self._held = False
        sqlite_path = _sqlite_path(storage_url)
        self._file = None if sqlite_path is None else Path(f"{sqlite_path}.{study_name}.lock")
        self._engine: sqlalchemy.Engine | None = None
        self._connection: sqlalchemy.Connection | None = None
        self._handle: Any = None

    def acquire(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._file is not None:
                self._handle = self._file.open("a+")
                fcntl.flock(self._handle, fcntl.LOCK_EX)
            else:
                if self._engine is None:
                    self._engine = sqlalchemy.create_engine(
                        self._url, poolclass=sqlalchemy.pool.NullPool
                    )
                connection = guarded(self._engine.connect, self._url)
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
                self._connection = connection
            self._held = True
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            if self._handle is not None:
                fcntl.flock(self._handle, fcntl.LOCK_UN)
                self._handle.close()
                self._handle = None
            if self._connection is not None:
                self._connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key}
                )
                self._connection.close()
                self._connection = None
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def held(self) -> Iterator[StudyLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()


def load_study(storage: RDBStorage, name: str) -> optuna.Study:
    from autonat_search.errors import StudyError

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
