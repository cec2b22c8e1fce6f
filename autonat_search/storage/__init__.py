"""Where studies live: Optuna's ``RDBStorage`` on PostgreSQL or the embedded SQLite store
(``rdb``), the per-study budget lock (``lock``), and checks that need neither Optuna nor a
store that exists yet (``probe``).

The names below are imported on first use, so that ``STORAGE_ENV`` (read by every command's
``--storage`` option) does not load SQLAlchemy and Optuna before a command runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autonat_search.storage.lock import StudyLock
    from autonat_search.storage.probe import (
        DEFAULT_MAX_WAIT,
        EMBEDDED_DEFAULT,
        STORAGE_ENV,
        STORAGE_FILE_ENV,
        check_reachable,
        redact,
        require_existing_store,
        resolve_storage_url,
        url_has_password,
    )
    from autonat_search.storage.rdb import (
        BudgetStanding,
        HeartbeatSettings,
        budget_standing,
        guarded,
        load_study,
        open_storage,
        rung_values,
        running_trials_without_heartbeat,
        storage_url_of,
        trial_state,
    )
    from autonat_search.storage.rerun import RerunFailedTrial, fail_and_rerun, fail_trials_of_actor
    from autonat_search.storage.resilient import ResilientRDBStorage, is_connection_error

_HOMES: dict[str, str] = {
    "StudyLock": "autonat_search.storage.lock",
    "EMBEDDED_DEFAULT": "autonat_search.storage.probe",
    "STORAGE_ENV": "autonat_search.storage.probe",
    "STORAGE_FILE_ENV": "autonat_search.storage.probe",
    "url_has_password": "autonat_search.storage.probe",
    "check_reachable": "autonat_search.storage.probe",
    "require_existing_store": "autonat_search.storage.probe",
    "resolve_storage_url": "autonat_search.storage.probe",
    "BudgetStanding": "autonat_search.storage.rdb",
    "budget_standing": "autonat_search.storage.rdb",
    "HeartbeatSettings": "autonat_search.storage.rdb",
    "guarded": "autonat_search.storage.rdb",
    "load_study": "autonat_search.storage.rdb",
    "open_storage": "autonat_search.storage.rdb",
    "redact": "autonat_search.storage.probe",
    "rung_values": "autonat_search.storage.rdb",
    "running_trials_without_heartbeat": "autonat_search.storage.rdb",
    "storage_url_of": "autonat_search.storage.rdb",
    "trial_state": "autonat_search.storage.rdb",
    "RerunFailedTrial": "autonat_search.storage.rerun",
    "fail_and_rerun": "autonat_search.storage.rerun",
    "fail_trials_of_actor": "autonat_search.storage.rerun",
    "DEFAULT_MAX_WAIT": "autonat_search.storage.probe",
    "ResilientRDBStorage": "autonat_search.storage.resilient",
    "is_connection_error": "autonat_search.storage.resilient",
}

__all__ = [
    "BudgetStanding",
    "budget_standing",
    "DEFAULT_MAX_WAIT",
    "EMBEDDED_DEFAULT",
    "STORAGE_ENV",
    "STORAGE_FILE_ENV",
    "HeartbeatSettings",
    "RerunFailedTrial",
    "ResilientRDBStorage",
    "StudyLock",
    "check_reachable",
    "fail_and_rerun",
    "fail_trials_of_actor",
    "guarded",
    "is_connection_error",
    "load_study",
    "open_storage",
    "redact",
    "require_existing_store",
    "resolve_storage_url",
    "rung_values",
    "running_trials_without_heartbeat",
    "storage_url_of",
    "trial_state",
    "url_has_password",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'autonat_search.storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
