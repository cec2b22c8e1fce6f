"""Where studies live: Optuna's ``RDBStorage`` on PostgreSQL or the embedded SQLite store
(``rdb``), and the per-study budget lock (``lock``)."""

from autonat_search.storage.lock import StudyLock
from autonat_search.storage.rdb import (
    EMBEDDED_DEFAULT,
    STORAGE_ENV,
    HeartbeatSettings,
    guarded,
    load_study,
    open_storage,
    redact,
    resolve_storage_url,
    running_trials_without_heartbeat,
    storage_url_of,
    trial_state_counts,
)
from autonat_search.storage.rerun import RerunFailedTrial, fail_and_rerun
from autonat_search.storage.resilient import (
    DEFAULT_MAX_WAIT,
    ResilientRDBStorage,
    is_connection_error,
)

__all__ = [
    "DEFAULT_MAX_WAIT",
    "EMBEDDED_DEFAULT",
    "STORAGE_ENV",
    "HeartbeatSettings",
    "RerunFailedTrial",
    "ResilientRDBStorage",
    "StudyLock",
    "fail_and_rerun",
    "guarded",
    "is_connection_error",
    "load_study",
    "open_storage",
    "redact",
    "resolve_storage_url",
    "running_trials_without_heartbeat",
    "storage_url_of",
    "trial_state_counts",
]
