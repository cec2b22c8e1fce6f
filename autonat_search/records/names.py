"""The names of the study and trial record's user attributes (the table in ``records``), and
what the record's readers and writers accept: anything with Optuna user attributes."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = [
    "Attributed",
    "FAIL_REASON_LENGTH",
    "Numbered",
    "Readable",
    "STEP_ATTR_PREFIXES",
    "STUDY_ARTIFACT_STORE",
    "STUDY_BUDGET",
    "STUDY_BUNDLE_PATH",
    "STUDY_CONFIG",
    "STUDY_FINGERPRINT",
    "STUDY_NOISE_FLOOR",
    "STUDY_NOISE_FLOOR_CLAIM",
    "STUDY_READY",
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

FAIL_REASON_LENGTH = 500


class Attributed(Protocol):
    """A study, a live trial or a frozen trial: anything with Optuna user attributes."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...

    def set_user_attr(self, key: str, value: Any) -> None: ...


class Readable(Protocol):
    """Anything with user attributes to read, a study summary too."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...


class Numbered(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def user_attrs(self) -> dict[str, Any]: ...
