"""Results computed while the database stayed away: kept on this machine, recorded later.

A worker waits out a database outage for a bounded time (``storage.resilient``). When a
trial's result is ready but cannot be told within that wait, the result is written to a file
in ``pending_dir()`` before the worker gives up, and the next worker that starts on the same
machine for the same study records it:

* the trial is still RUNNING (nobody failed it yet): it is told the kept result;
* the trial was failed as stale and its re-run is still WAITING: the re-run is claimed
  (WAITING -> RUNNING, which only one caller can do), given the original's intermediate values
  and attributes, and told the kept result, so the evaluation is not done twice;
* otherwise (its re-run already started or finished): the evaluation has been or is being
  done again, and the file is dropped with a log line.

Files are claimed by renaming them, so two actors starting at once never record one twice;
a file claimed by a process that died is claimed again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from autonat_search import records
from autonat_search.storage import (
    ResilientRDBStorage,
    StudyLock,
    budget_standing,
    redact,
    storage_url_of,
)

__all__ = ["PENDING_DIR_ENV", "PendingResult", "keep_pending", "pending_dir", "record_pending"]

log = logging.getLogger(__name__)

PENDING_DIR_ENV = "AUTONAT_PENDING_DIR"
_KEPT_STATES = (TrialState.COMPLETE.name, TrialState.PRUNED.name)


def pending_dir() -> Path:
    """``$AUTONAT_PENDING_DIR``, else ``$XDG_STATE_HOME/autonat-search/pending`` (by default
    ``~/.local/state/autonat-search/pending``)."""
    explicit = os.environ.get(PENDING_DIR_ENV)
    if explicit:
        return Path(explicit)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "autonat-search" / "pending"


@dataclass(frozen=True)
class PendingResult:
    """A trial's result not yet recorded; ``storage`` is the store's URL without password."""

    storage: str
    study_name: str
    trial_id: int
    trial_number: int
    state: str
    value: float | None

    def describe(self) -> str:
        shown = "pruned" if self.value is None else f"{self.state.lower()}, {self.value:.4f}"
        return f"trial {self.trial_number} of study {self.study_name!r} ({shown})"


def _file_name(result: PendingResult) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", result.study_name)
    return f"{safe}.{result.trial_id}.json"


def keep_pending(result: PendingResult, directory: Path | None = None) -> Path:
    """Write ``result`` atomically (a complete file or none) and return its path."""
    if result.state not in _KEPT_STATES:
        raise ValueError(f"only COMPLETE or PRUNED results are kept, not {result.state}")
    if result.value is not None and not math.isfinite(result.value):
        raise ValueError(f"a kept result needs a finite value, not {result.value}")
    folder = directory or pending_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(result)
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        json.dump(asdict(result), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans(folder: Path) -> list[Path]:
    """Files claimed by a process that died before recording them."""
    out = []
    for path in folder.glob("*.claimed-*"):
        pid = path.suffix.removeprefix(".claimed-")
        if pid.isdigit() and not _pid_alive(int(pid)):
            out.append(path)
    return out


def _claim_files(folder: Path, storage: str, study_name: str) -> list[tuple[Path, PendingResult]]:
    claimed = []
    for path in sorted([*folder.glob("*.json"), *_orphans(folder)]):
        try:
            result = PendingResult(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # taken by another actor meanwhile, or not ours to read
        if result.storage != storage or result.study_name != study_name:
            continue
        mine = path.with_suffix(f".claimed-{os.getpid()}")
        try:
            path.rename(mine)
        except FileNotFoundError:
            continue  # another actor claimed it first
        claimed.append((mine, result))
    return claimed


def _waiting_rerun(study: optuna.Study, failed: FrozenTrial) -> FrozenTrial | None:
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        history = trial.system_attrs.get("retry_history", [])
        if history and history[-1] == failed.number:
            return trial
    return None


def _claim_rerun(
    study: optuna.Study, storage: ResilientRDBStorage, failed: FrozenTrial, lock: StudyLock
) -> FrozenTrial | None:
    """The failed trial's WAITING re-run, now RUNNING and ours, if the budget has its slot."""
    with lock.held():
        rerun = _waiting_rerun(study, failed)
        if rerun is None:
            return None
        if not budget_standing(storage, study).has_free_slot:
            return None
        if not storage.set_trial_state_values(rerun._trial_id, state=TrialState.RUNNING):
            return None
        storage.record_heartbeat_retrying(rerun._trial_id)
    for step, value in failed.intermediate_values.items():
        storage.set_trial_intermediate_value(rerun._trial_id, step, value)
    attrs = {k: v for k, v in failed.user_attrs.items() if k != records.TRIAL_FAIL_REASON}
    attrs[records.TRIAL_RECORDED_FROM] = failed.number
    storage.set_trial_user_attrs(rerun._trial_id, attrs)
    return storage.get_trial(rerun._trial_id)


def _record(
    study: optuna.Study, storage: ResilientRDBStorage, result: PendingResult, lock: StudyLock
) -> bool:
    value = result.value if result.state == TrialState.COMPLETE.name else None
    trial = storage.get_trial(result.trial_id)
    if trial.state == TrialState.RUNNING:
        try:
            study.tell(trial.number, value, state=TrialState[result.state])
            return True
        except (RuntimeError, ValueError):  # finished meanwhile (failed as stale by another
            trial = storage.get_trial(result.trial_id)  # worker): Optuna raises either
            if trial.state == TrialState.RUNNING:
                raise
    if trial.state != TrialState.FAIL:
        return False
    rerun = _claim_rerun(study, storage, trial, lock)
    if rerun is None:
        return False
    study.tell(rerun.number, value, state=TrialState[result.state])
    return True


def record_pending(
    study: optuna.Study,
    storage: ResilientRDBStorage,
    lock: StudyLock,
    directory: Path | None = None,
) -> int:
    """Record this study's kept results found in ``directory``; how many were recorded."""
    folder = directory or pending_dir()
    if not folder.is_dir():
        return 0
    recorded = 0
    for path, result in _claim_files(folder, redact(storage_url_of(storage)), study.study_name):
        try:
            done = _record(study, storage, result, lock)
        except BaseException:
            path.rename(path.with_suffix(".json"))  # kept for the next worker
            raise
        if done:
            recorded += 1
            log.info("recorded the kept result of %s", result.describe())
        else:
            log.info(
                "the kept result of %s is not needed: the trial was re-run meanwhile",
                result.describe(),
            )
        path.unlink()
    return recorded
