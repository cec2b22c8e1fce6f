"""THE study and trial record: every user attribute a study or trial carries, its type, and
how it is written and read back. Every writer and reader goes through this module.

Study attributes (written by ``start-study``, except ``reevaluations``):

========================  ===================================================================
``config``                dict: the study config's canonical form (``StudyConfig.to_dict``)
``n_trials``              int: the budget (finished trials); may only be raised
``bundle_fingerprint``    dict: the bundle file's content and each file's size and sha256
``bundle_path``           str: the bundle file the study was created with
``warm_start_notes``      list[str]: how each warm start was enqueued, in words
``ready``                 bool: set last, once the study is fully set up
``reevaluations``         dict[str(trial number), dict[str(seed), float]]: fresh-seed FIDs
``artifact_store``        str: where trials upload artifacts (absolute folder or s3:// URL);
                          absent: no artifacts
``noise_floor``           dict: the first warm start's FID per rung on a few sample seeds
                          (``NoiseFloor``), measured once by the first worker
``noise_floor_claim``     float: when a worker began measuring it (seconds since the epoch)
========================  ===================================================================

The study's metric name (``FID@<top rung>``) and its note (optuna-dashboard) are written by
``notes``.

Trial attributes (written by the objective; ``warm_start`` and an exact ``strategy`` are
given to an enqueued warm start):

========================  ===================================================================
``strategy``              dict: the strategy in the reference's format (``manual_*`` lists)
``fid_per_rung``          dict[str(sample count), float]: FID at each rung reached
``images_generated``      int: images generated so far (the last rung reached)
``seconds``               float: seconds spent on the evaluation so far
``device``                str: the device the trial ran on
``warm_start``            str: the warm start's label (absent for sampled trials)
``fail_reason``           str: why the trial failed (at most 500 characters)
``actor``                 str: the worker actor running it (its trials are failed if it dies)
``artifact_seconds``      float: seconds spent making and uploading the trial's artifacts
``recorded_from_trial``   int: a re-run given the result its failed original computed (a
                          result kept through a database outage: ``pending_results``)
``fd_update``             int: the finite-difference search's update k of this evaluation
``fd_coordinate``         int: -1 for the update's centre x_k, else the number it probes
                          (``samplers.finite_difference``; both absent outside that search)
``mask_ratio_<t>``, ...   float: the strategy flat, one attribute per step (``step_attrs``):
                          ``mask_ratio_<t>`` and ``remask_temp_<t>`` for t = 1..T-1,
                          ``sample_temp_<t>`` and ``cfg_<t>`` for t = 1..T (zero-padded to
                          the width of T), so that a dashboard can sort and plot them
========================  ===================================================================

JSON keys are strings, so sample counts and seeds are stored as ``str(int)`` and read back
as ints.

A trial's attributes written together (its strategy, a rung's progress) reach the storage in
one transaction where the storage can group writes (``grouped_writes``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from optuna.trial import FrozenTrial, Trial, TrialState

from autonat_search.errors import StudyError
from nat_core.strategy import GenerationStrategy

__all__ = [
    "STEP_ATTR_PREFIXES",
    "STUDY_ARTIFACT_STORE",
    "STUDY_BUDGET",
    "STUDY_BUNDLE_PATH",
    "STUDY_CONFIG",
    "STUDY_FINGERPRINT",
    "STUDY_READY",
    "STUDY_NOISE_FLOOR",
    "STUDY_NOISE_FLOOR_CLAIM",
    "STUDY_REEVALUATIONS",
    "STUDY_WARM_START_NOTES",
    "TRIAL_ACTOR",
    "TRIAL_ARTIFACT_SECONDS",
    "TRIAL_DEVICE",
    "TRIAL_FAIL_REASON",
    "TRIAL_FD_COORDINATE",
    "TRIAL_FD_UPDATE",
    "TRIAL_FID_PER_RUNG",
    "TRIAL_IMAGES",
    "TRIAL_RECORDED_FROM",
    "TRIAL_SECONDS",
    "TRIAL_STRATEGY",
    "TRIAL_WARM_START",
    "NoiseFloor",
    "StudySetup",
    "TrialRecord",
    "add_reevaluation",
    "enqueued_trial_attrs",
    "grouped_writes",
    "is_ready",
    "mark_ready",
    "read_artifact_store",
    "read_budget",
    "read_bundle_path",
    "read_noise_floor",
    "read_noise_floor_claim",
    "read_config_dict",
    "read_fingerprint",
    "read_reevaluations",
    "read_strategy",
    "read_warm_start_notes",
    "rerun_user_attrs",
    "require_strategy",
    "require_value",
    "step_attrs",
    "write_actor",
    "write_artifact_seconds",
    "write_artifact_store",
    "write_budget",
    "write_device",
    "write_fail_reason",
    "write_noise_floor",
    "write_noise_floor_claim",
    "write_rung",
    "write_study_setup",
    "write_strategy",
    "write_warm_start_notes",
]

STUDY_CONFIG = "config"
STUDY_BUDGET = "n_trials"
STUDY_FINGERPRINT = "bundle_fingerprint"
STUDY_BUNDLE_PATH = "bundle_path"
STUDY_WARM_START_NOTES = "warm_start_notes"
STUDY_READY = "ready"
STUDY_REEVALUATIONS = "reevaluations"
STUDY_ARTIFACT_STORE = "artifact_store"
STUDY_NOISE_FLOOR = "noise_floor"
STUDY_NOISE_FLOOR_CLAIM = "noise_floor_claim"

TRIAL_STRATEGY = "strategy"
TRIAL_FID_PER_RUNG = "fid_per_rung"
TRIAL_IMAGES = "images_generated"
TRIAL_SECONDS = "seconds"
TRIAL_DEVICE = "device"
TRIAL_WARM_START = "warm_start"
TRIAL_FAIL_REASON = "fail_reason"
TRIAL_ACTOR = "actor"
TRIAL_ARTIFACT_SECONDS = "artifact_seconds"
TRIAL_RECORDED_FROM = "recorded_from_trial"
TRIAL_FD_UPDATE = "fd_update"
TRIAL_FD_COORDINATE = "fd_coordinate"
# GenerationStrategy field -> the prefix of its per-step attributes.
STEP_ATTR_PREFIXES = {
    "mask_ratios": "mask_ratio",
    "remask_temps": "remask_temp",
    "sample_temps": "sample_temp",
    "cfg_scales": "cfg",
}

_FAIL_REASON_LENGTH = 500


class _Attributed(Protocol):
    """A study, a live trial or a frozen trial: anything with Optuna user attributes."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...

    def set_user_attr(self, key: str, value: Any) -> None: ...


class _Readable(Protocol):
    """Anything with user attributes to read, a study summary too."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...


class _Numbered(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def user_attrs(self) -> dict[str, Any]: ...


# -- study ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudySetup:
    """What ``start-study`` writes about a study before marking it ready."""

    config: dict[str, Any]
    budget: int
    fingerprint: dict[str, Any]
    bundle_path: Path
    artifact_store: str | None = None


def write_study_setup(study: _Attributed, setup: StudySetup) -> None:
    study.set_user_attr(STUDY_CONFIG, setup.config)
    study.set_user_attr(STUDY_BUDGET, setup.budget)
    study.set_user_attr(STUDY_FINGERPRINT, setup.fingerprint)
    study.set_user_attr(STUDY_BUNDLE_PATH, str(setup.bundle_path))
    write_artifact_store(study, setup.artifact_store)


def mark_ready(study: _Attributed) -> None:
    study.set_user_attr(STUDY_READY, True)


def is_ready(study: _Attributed) -> bool:
    return bool(study.user_attrs.get(STUDY_READY))


def read_config_dict(study: _Attributed) -> dict[str, Any]:
    return dict(study.user_attrs[STUDY_CONFIG])


def write_budget(study: _Attributed, n_trials: int) -> None:
    study.set_user_attr(STUDY_BUDGET, n_trials)


def read_budget(study: _Readable) -> int:
    return int(study.user_attrs[STUDY_BUDGET])


def read_fingerprint(study: _Attributed) -> dict[str, Any]:
    return dict(study.user_attrs[STUDY_FINGERPRINT])


def read_bundle_path(study: _Attributed) -> Path:
    return Path(study.user_attrs[STUDY_BUNDLE_PATH])


def write_warm_start_notes(study: _Attributed, notes: list[str]) -> None:
    study.set_user_attr(STUDY_WARM_START_NOTES, list(notes))


def read_warm_start_notes(study: _Attributed) -> list[str]:
    return [str(note) for note in study.user_attrs.get(STUDY_WARM_START_NOTES, [])]


def write_artifact_store(study: _Attributed, location: str | None) -> None:
    if location is not None:
        study.set_user_attr(STUDY_ARTIFACT_STORE, location)


def read_artifact_store(study: _Readable) -> str | None:
    location = study.user_attrs.get(STUDY_ARTIFACT_STORE)
    return None if location is None else str(location)


def read_reevaluations(study: _Attributed) -> dict[int, dict[int, float]]:
    """Fresh-seed FIDs: trial number -> seed -> FID."""
    stored = study.user_attrs.get(STUDY_REEVALUATIONS, {})
    return {
        int(trial): {int(seed): float(fid) for seed, fid in by_seed.items()}
        for trial, by_seed in stored.items()
    }


def add_reevaluation(study: _Attributed, results: dict[int, float], seed: int) -> None:
    """Record fresh-seed FIDs (trial number -> FID) on ``seed``, keeping earlier ones."""
    stored = {k: dict(v) for k, v in study.user_attrs.get(STUDY_REEVALUATIONS, {}).items()}
    for trial, fid in results.items():
        stored.setdefault(str(trial), {})[str(seed)] = fid
    study.set_user_attr(STUDY_REEVALUATIONS, stored)


@dataclass(frozen=True)
class NoiseFloor:
    """Seed-to-seed spread of FID: one strategy (a warm start) on several sample seeds."""

    warm_start: str
    seeds: tuple[int, ...]
    fids: dict[int, tuple[float, ...]]  # rung -> FID on each seed, in the order of ``seeds``

    @property
    def spread(self) -> dict[int, float]:
        """Per rung: the largest FID minus the smallest over the seeds."""
        return {rung: max(values) - min(values) for rung, values in self.fids.items()}


def write_noise_floor(study: _Attributed, floor: NoiseFloor) -> None:
    study.set_user_attr(
        STUDY_NOISE_FLOOR,
        {
            "warm_start": floor.warm_start,
            "seeds": list(floor.seeds),
            "fids": {str(rung): list(values) for rung, values in floor.fids.items()},
        },
    )


def read_noise_floor(study: _Attributed) -> NoiseFloor | None:
    stored = study.user_attrs.get(STUDY_NOISE_FLOOR)
    if stored is None:
        return None
    return NoiseFloor(
        warm_start=str(stored["warm_start"]),
        seeds=tuple(int(s) for s in stored["seeds"]),
        fids={int(r): tuple(float(f) for f in v) for r, v in stored["fids"].items()},
    )


def write_noise_floor_claim(study: _Attributed, when: float) -> None:
    study.set_user_attr(STUDY_NOISE_FLOOR_CLAIM, when)


def read_noise_floor_claim(study: _Attributed) -> float | None:
    when = study.user_attrs.get(STUDY_NOISE_FLOOR_CLAIM)
    return None if when is None else float(when)


# -- trial ----------------------------------------------------------------------------------


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
    # Optuna's study wraps its RDBStorage in a private cache (``_CachedStorage._backend``).
    storage = getattr(trial.storage, "_backend", trial.storage)
    group = getattr(storage, "grouped_writes", None)
    return None if group is None else group(trial._trial_id)


def _set_user_attrs(trial: _Attributed, attrs: Mapping[str, Any]) -> None:
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


def write_strategy(trial: _Attributed, strategy: GenerationStrategy) -> None:
    """The strategy in the reference's format, and flat, one attribute per step."""
    _set_user_attrs(trial, {TRIAL_STRATEGY: strategy.to_reference_dict(), **step_attrs(strategy)})


def read_strategy(trial: _Numbered) -> GenerationStrategy | None:
    data = trial.user_attrs.get(TRIAL_STRATEGY)
    if data is None:
        return None
    return GenerationStrategy.from_reference_dict(data, source=f"trial {trial.number}")


def require_strategy(trial: _Numbered) -> GenerationStrategy:
    strategy = read_strategy(trial)
    if strategy is None:
        raise StudyError(f"trial {trial.number} has no recorded strategy")
    return strategy


def require_value(trial: FrozenTrial) -> float:
    """The objective value of a complete trial."""
    if trial.value is None:
        raise StudyError(f"trial {trial.number} has no value ({trial.state.name})")
    return float(trial.value)


def write_actor(trial: _Attributed, actor: str) -> None:
    trial.set_user_attr(TRIAL_ACTOR, actor)


def rerun_user_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """What a re-run of ``trial`` inherits: its warm-start label and exact strategy, not its
    progress, device, actor or failure."""
    attrs = trial.user_attrs
    if TRIAL_WARM_START not in attrs:
        return {}
    return {k: attrs[k] for k in (TRIAL_WARM_START, TRIAL_STRATEGY) if k in attrs}


def write_device(trial: _Attributed, device_name: str) -> None:
    trial.set_user_attr(TRIAL_DEVICE, device_name)


def write_rung(
    trial: _Attributed, fid_per_rung: dict[int, float], *, images: int, seconds: float
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


def write_artifact_seconds(trial: _Attributed, seconds: float) -> None:
    trial.set_user_attr(TRIAL_ARTIFACT_SECONDS, round(seconds, 3))


def write_fail_reason(trial: _Attributed, reason: str) -> None:
    trial.set_user_attr(TRIAL_FAIL_REASON, reason[:_FAIL_REASON_LENGTH])


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
