"""The per-study budget lock, held while a worker counts trials and reserves a slot.

PostgreSQL: a session advisory lock on a key derived from the study name. The embedded
store (SQLite): an exclusive ``flock`` on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy

from autonat_search.storage.rdb import guarded, sqlite_file
from autonat_search.storage.resilient import (
    DEFAULT_MAX_WAIT,
    is_connection_error,
    retry_while_unreachable,
)

__all__ = ["StudyLock"]


def _lock_key(study_name: str) -> int:
    digest = hashlib.sha256(f"autonat-search:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StudyLock:
    """A cross-process lock per study: advisory lock (PostgreSQL) or file lock (SQLite).

    ``release()`` is idempotent, so a trial may release the lock as soon as it exists.
    Acquiring waits out a database outage of up to ``max_wait`` seconds; a connection lost
    while the lock is held releases it on the server.
    """

    def __init__(
        self, storage_url: str, study_name: str, *, max_wait: float = DEFAULT_MAX_WAIT
    ) -> None:
        self._url = storage_url
        self._max_wait = max_wait
        self._key = _lock_key(study_name)
        self._thread_lock = threading.Lock()
        self._held = False
        sqlite_path = sqlite_file(storage_url)
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
                    # One pooled connection, checked before use: no new server session
                    # (a process in PostgreSQL) for every trial.
                    self._engine = sqlalchemy.create_engine(
                        self._url, pool_size=1, max_overflow=0, pool_pre_ping=True
                    )
                self._connection = retry_while_unreachable(
                    self._lock_on_server, url=self._url, max_wait=self._max_wait
                )
            self._held = True
        except BaseException:
            self._thread_lock.release()
            raise

    def _lock_on_server(self) -> sqlalchemy.Connection:
        assert self._engine is not None
        connection = guarded(self._engine.connect, self._url)
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        except BaseException:
            connection.close()
            raise
        return connection

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
                connection, self._connection = self._connection, None
                try:
                    connection.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key}
                    )
                except sqlalchemy.exc.SQLAlchemyError as error:
                    if not is_connection_error(error):
                        raise
                    # The server ended the session, and with it the lock.
                finally:
                    connection.close()
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def held(self) -> Iterator[StudyLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()
