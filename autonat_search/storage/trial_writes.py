"""Several writes of one trial in one transaction, a heartbeat in one statement, a note in one
transaction.

Optuna's ``RDBStorage`` writes each parameter, attribute and intermediate value in a
transaction of its own (read the trial, check it is updatable, read the row, write it), and
a trial of this service writes 30 parameters and about 40 attributes. ``write_trial`` does
what those calls do, for all of them at once: read the trial once, refuse a finished one
with Optuna's ``UpdateFinishedTrialError`` (``check_trial_is_updatable``), check each
parameter's distribution against the study's earlier ones (as ``_set_trial_param`` does),
insert the parameters and upsert the (user and system) attributes and intermediate values.

``write_heartbeat`` records a trial's heartbeat as one upsert of the database's current time,
where Optuna's ``record_heartbeat`` reads the row, reads it again to lock it, reads the time
and updates (the same value: the database's ``now()``).

``write_note`` stores a note as study system attributes (a version key and the body in
chunks, keys the caller names) in one transaction: it reads the version key alone, where
optuna-dashboard's ``save_note`` reads every study system attribute twice, a cost that grows
with the study.

Optuna's tables and session helper are private API: this module is the one place that
writes them (``ResilientRDBStorage`` calls it, with retries; the storage tests run it on
PostgreSQL and SQLite and read the results back through Optuna's ``get_trial``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy
from optuna import distributions
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

__all__ = ["PendingParam", "TrialWrites", "write_heartbeat", "write_note", "write_trial"]


@dataclass(frozen=True)
class PendingParam:
    """One ``set_trial_param`` call: ``previous`` is the distribution Optuna's cache already
    checked this name against (None: look in the study)."""

    name: str
    internal_value: float
    distribution: BaseDistribution
    previous: BaseDistribution | None = None


@dataclass
class TrialWrites:
    """Writes of one trial; a later value of an attribute or a step replaces the earlier."""

    params: list[PendingParam] = field(default_factory=list)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.params or self.user_attrs or self.system_attrs or self.intermediate_values)


def write_trial(storage: RDBStorage, trial_id: int, writes: TrialWrites) -> None:
    """All of ``writes`` in one transaction, or none (``UpdateFinishedTrialError`` when the
    trial is finished, ``ValueError`` for a distribution that contradicts the study's).

    A parameter that already exists fails the whole transaction, which is then ignored, as
    Optuna ignores it for one parameter: it happens when a retried call finds its first
    attempt committed."""
    if not writes:
        return
    with _create_scoped_session(storage.scoped_session, True) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, cast(TrialState, trial.state))
        for param in writes.params:
            _check_distribution(session, cast(int, trial.study_id), param)
        if writes.params:
            session.execute(
                sqlalchemy.insert(models.TrialParamModel),
                [
                    {
                        "trial_id": trial_id,
                        "param_name": param.name,
                        "param_value": param.internal_value,
                        "distribution_json": distributions.distribution_to_json(param.distribution),
                    }
                    for param in writes.params
                ],
            )
        for model, attrs in (
            (models.TrialUserAttributeModel, writes.user_attrs),
            (models.TrialSystemAttributeModel, writes.system_attrs),
        ):
            rows = [
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in attrs.items()
            ]
            _upsert(storage, session, model, rows, key=("trial_id", "key"))
        _upsert(
            storage,
            session,
            models.TrialIntermediateValueModel,
            [
                _intermediate_row(trial_id, step, v)
                for step, v in writes.intermediate_values.items()
            ],
            key=("trial_id", "step"),
        )


def _intermediate_row(trial_id: int, step: int, value: float) -> dict[str, Any]:
    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
    return {
        "trial_id": trial_id,
        "step": step,
        "intermediate_value": stored,
        "intermediate_value_type": kind,
    }


def _check_distribution(session: Session, study_id: int, param: PendingParam) -> None:
    previous = param.previous
    if previous is None:
        record = (
            session.query(models.TrialParamModel)
            .join(models.TrialModel)
            .filter(models.TrialModel.study_id == study_id)
            .filter(models.TrialParamModel.param_name == param.name)
            .first()
        )
        if record is not None:
            previous = distributions.json_to_distribution(cast(str, record.distribution_json))
    if previous is not None:
        distributions.check_distribution_compatibility(previous, param.distribution)


def _insert(storage: RDBStorage, table: sqlalchemy.Table) -> Any:
    """An INSERT that can turn into an upsert: the stores ``open_storage`` opens are
    PostgreSQL and SQLite, both with ``ON CONFLICT DO UPDATE``."""
    if storage.engine.name == "postgresql":
        return postgresql.insert(table)
    return sqlite_dialect.insert(table)


def _upsert(
    storage: RDBStorage,
    session: Session,
    model: Any,
    rows: Sequence[dict[str, Any]],
    *,
    key: tuple[str, ...],
) -> None:
    """Insert ``rows``, replacing the other columns of rows whose ``key`` columns exist."""
    if not rows:
        return
    insert = _insert(storage, model.__table__).values(list(rows))
    replaced = {column: insert.excluded[column] for column in rows[0] if column not in key}
    session.execute(insert.on_conflict_do_update(index_elements=list(key), set_=replaced))


def write_heartbeat(storage: RDBStorage, trial_id: int) -> None:
    """Record the trial's heartbeat: now, as the database tells the time."""
    now = sqlalchemy.func.now()
    insert = _insert(storage, models.TrialHeartbeatModel.__table__)
    upsert = insert.values(trial_id=trial_id, heartbeat=now).on_conflict_do_update(
        index_elements=["trial_id"], set_={"heartbeat": now}
    )
    with _create_scoped_session(storage.scoped_session, True) as session:
        session.execute(upsert)


def write_note(
    storage: RDBStorage, study_id: int, *, version_key: str, chunk_prefix: str, chunks: list[str]
) -> None:
    """Set study system attribute ``version_key`` to its stored value + 1 (1 if none) and
    ``chunk_prefix + str(i)`` to ``chunks[i]``, emptying the chunks of a longer earlier body,
    in one transaction."""
    model = models.StudySystemAttributeModel
    with _create_scoped_session(storage.scoped_session, True) as session:
        stored = session.execute(
            sqlalchemy.select(model.value_json).where(
                model.study_id == study_id, model.key == version_key
            )
        ).scalar_one_or_none()
        earlier = 0
        if stored is not None:
            earlier = len(
                session.execute(
                    sqlalchemy.select(model.key).where(
                        model.study_id == study_id,
                        model.key.startswith(chunk_prefix, autoescape=True),
                    )
                ).all()
            )
        version = 1 if stored is None else int(json.loads(stored)) + 1
        body = [*chunks, *[""] * (earlier - len(chunks))]
        rows = [{"study_id": study_id, "key": version_key, "value_json": json.dumps(version)}]
        rows += [
            {"study_id": study_id, "key": f"{chunk_prefix}{i}", "value_json": json.dumps(chunk)}
            for i, chunk in enumerate(body)
        ]
        _upsert(storage, session, model, rows, key=("study_id", "key"))
