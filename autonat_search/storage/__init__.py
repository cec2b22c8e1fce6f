"""Where studies live: Optuna's ``RDBStorage`` on PostgreSQL or the embedded SQLite store
(``rdb``), and the per-study budget lock (``lock``)."""

from autonat_search.storage.lock import StudyLock
from autonat_search.storage.rdb import (
    EMBEDDED_DEFAULT,
    STORAGE_ENV,
    STORAGE_FILE_ENV,
    HeartbeatSettings,
    guarded,
    load_study,
    open_storage,
    redact,
    resolve_storage_url,
    running_trials_without_heartbeat,
    storage_url_of,
    url_has_password,
)

__all__ = [
    "EMBEDDED_DEFAULT",
    "STORAGE_ENV",
    "STORAGE_FILE_ENV",
    "HeartbeatSettings",
    "StudyLock",
    "guarded",
    "load_study",
    "open_storage",
    "redact",
    "resolve_storage_url",
    "running_trials_without_heartbeat",
    "storage_url_of",
    "url_has_password",
]
