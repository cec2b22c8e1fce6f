"""A trial's part of the record: its strategy (reference format and one attribute per step),
device, actor, FID per rung, images, seconds, fail reason; ``TrialRecord`` reads it back.
Attributes written together reach a grouping storage in one transaction (``grouped_writes``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, Trial, TrialState

from autonat_search.errors import StudyError
from autonat_search.records.names import (
    FAIL_REASON_LENGTH,
    STEP_ATTR_PREFIXES,
    TRIAL_ACTOR,
    TRIAL_ARTIFACT_SECONDS,
    TRIAL_DEVICE,
    TRIAL_FAIL_REASON,
    TRIAL_FID_PER_RUNG,
    TRIAL_IMAGES,
    TRIAL_SECONDS,
    TRIAL_STRATEGY,
    TRIAL_WARM_START,
    Attributed,
    Numbered,
)
from nat_core.strategy import GenerationStrategy

__all__ = [
    "TrialRecord",
    "backing_storage",
    "enqueued_trial_attrs",
    "grouped_writes",
    "read_strategy",
    "require_strategy",
    "require_value",
    "rerun_user_attrs",
    "step_attrs",
    "write_actor",
    "write_artifact_seconds",
    "write_device",
    "write_fail_reason",
    "write_rung",
    "write_strategy",
]


@contextmanager
def grouped_writes(trial: object) -> Iterator[None]:
    """Inside, the parameters and user attributes set on a live trial reach the storage in
    one transaction when the block ends, where its storage groups writes
    (``ResilientRDBStorage.grouped_writes``); anywhere else (an in-memory study, a frozen
    trial) each is written as it is set. The trial's own view is up to date either way."""
    group = _storage_group(trial)
    if group is None:
        yield
        return
    with group:
        yield


def _storage_group(trial: object) -> AbstractContextManager[None] | None:
    if not isinstance(trial, Trial):
        return None
    group = getattr(backing_storage(trial), "grouped_writes", None)
    return None if group is None else group(trial._trial_id)


def backing_storage(trial: Trial) -> object:
    """The storage under the live trial's study: its ``RDBStorage`` (a ``ResilientRDBStorage``
    in the service), which Optuna's study wraps in a private cache (``_CachedStorage``)."""
    return getattr(trial.storage, "_backend", trial.storage)


def _set_user_attrs(trial: Attributed, attrs: Mapping[str, Any]) -> None:
    with grouped_writes(trial):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)


def enqueued_trial_attrs(label: str, exact: GenerationStrategy | None) -> dict[str, Any]:
    """User attributes of an enqueued warm start; ``exact``: its strategy, if representable."""
    attrs: dict[str, Any] = {TRIAL_WARM_START: label}
    if exact is not None:
        attrs[TRIAL_STRATEGY] = exact.to_reference_dict()
    return attrs


def step_attrs(strategy: GenerationStrategy) -> dict[str, float]:
    """The strategy as one attribute per step and schedule (``mask_ratio_1``, ...)."""
    width = len(str(len(strategy.sample_temps)))
    return {
        f"{prefix}_{step:0{width}d}": value
        for name, prefix in STEP_ATTR_PREFIXES.items()
        for step, value in enumerate(getattr(strategy, name), start=1)
    }


def write_strategy(trial: Attributed, strategy: GenerationStrategy) -> None:
    """The strategy in the reference's format, and flat, one attribute per step."""
    _set_user_attrs(trial, {TRIAL_STRATEGY: strategy.to_reference_dict(), **step_attrs(strategy)})


def read_strategy(trial: Numbered) -> GenerationStrategy | None:
    data = trial.user_attrs.get(TRIAL_STRATEGY)
    if data is None:
        return None
    return GenerationStrategy.from_reference_dict(data, source=f"trial {trial.number}")


def require_strategy(trial: Numbered) -> GenerationStrategy:
    strategy = read_strategy(trial)
    if strategy is None:
        raise StudyError(f"trial {trial.number} has no recorded strategy")
    return strategy


def require_value(trial: FrozenTrial) -> float:
    """The objective value of a complete trial."""
    if trial.value is None:
        raise StudyError(f"trial {trial.number} has no value ({trial.state.name})")
    return float(trial.value)


def write_actor(trial: Attributed, actor: str) -> None:
    trial.set_user_attr(TRIAL_ACTOR, actor)


def rerun_user_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """What a re-run of ``trial`` inherits: its warm-start label and exact strategy, not its
    progress, device, actor or failure."""
    attrs = trial.user_attrs
    if TRIAL_WARM_START not in attrs:
        return {}
    return {k: attrs[k] for k in (TRIAL_WARM_START, TRIAL_STRATEGY) if k in attrs}


def write_device(trial: Attributed, device_name: str) -> None:
    trial.set_user_attr(TRIAL_DEVICE, device_name)


def write_rung(
    trial: Attributed, fid_per_rung: dict[int, float], *, images: int, seconds: float
) -> None:
    """The progress after a rung: FID at every rung so far, images and seconds so far."""
    _set_user_attrs(
        trial,
        {
            TRIAL_FID_PER_RUNG: {str(n): fid for n, fid in fid_per_rung.items()},
            TRIAL_IMAGES: images,
            TRIAL_SECONDS: round(seconds, 3),
        },
    )


def write_artifact_seconds(trial: Attributed, seconds: float) -> None:
    trial.set_user_attr(TRIAL_ARTIFACT_SECONDS, round(seconds, 3))


def write_fail_reason(trial: Attributed, reason: str) -> None:
    trial.set_user_attr(TRIAL_FAIL_REASON, reason[:FAIL_REASON_LENGTH])


@dataclass(frozen=True)
class TrialRecord:
    """Everything a finished or running trial recorded, typed."""

    number: int
    state: TrialState
    value: float | None
    strategy: dict[str, list[float]] | None
    fid_per_rung: dict[int, float] = field(default_factory=dict)
    images: int = 0
    seconds: float | None = None
    device: str | None = None
    warm_start: str | None = None
    fail_reason: str | None = None

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        return cls.from_attrs(trial.number, trial.user_attrs, state=trial.state, value=trial.value)

    @classmethod
    def from_attrs(
        cls,
        number: int,
        attrs: dict[str, Any],
        *,
        state: TrialState = TrialState.RUNNING,
        value: float | None = None,
    ) -> TrialRecord:
        """The record of trial ``number`` from its user attributes (a live trial's too)."""
        seconds = attrs.get(TRIAL_SECONDS)
        return cls(
            number=number,
            state=state,
            value=value,
            strategy=attrs.get(TRIAL_STRATEGY),
            fid_per_rung={int(n): float(f) for n, f in attrs.get(TRIAL_FID_PER_RUNG, {}).items()},
            images=int(attrs.get(TRIAL_IMAGES, 0)),
            seconds=None if seconds is None else float(seconds),
            device=attrs.get(TRIAL_DEVICE),
            warm_start=attrs.get(TRIAL_WARM_START),
            fail_reason=attrs.get(TRIAL_FAIL_REASON),
        )
