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

__all__ = ["StudyLock"]


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
