"""The study's part of the record: its setup, budget, warm-start notes, artifact store,
fresh-seed re-evaluations and noise floor (the study table in ``records``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autonat_search.records.names import (
    STUDY_ARTIFACT_STORE,
    STUDY_BUDGET,
    STUDY_BUNDLE_PATH,
    STUDY_CONFIG,
    STUDY_FINGERPRINT,
    STUDY_NOISE_FLOOR,
    STUDY_NOISE_FLOOR_CLAIM,
    STUDY_READY,
    STUDY_REEVALUATIONS,
    STUDY_WARM_START_NOTES,
    Attributed,
    Readable,
)

__all__ = [
    "NoiseFloor",
    "StudySetup",
    "add_reevaluation",
    "is_ready",
    "mark_ready",
    "read_artifact_store",
    "read_budget",
    "read_bundle_path",
    "read_config_dict",
    "read_fingerprint",
    "read_noise_floor",
    "read_noise_floor_claim",
    "read_reevaluations",
    "read_warm_start_notes",
    "write_artifact_store",
    "write_budget",
    "write_noise_floor",
    "write_noise_floor_claim",
    "write_study_setup",
    "write_warm_start_notes",
]


@dataclass(frozen=True)
class StudySetup:
    """What ``start-study`` writes about a study before marking it ready."""

    config: dict[str, Any]
    budget: int
    fingerprint: dict[str, Any]
    bundle_path: Path
    artifact_store: str | None = None


def write_study_setup(study: Attributed, setup: StudySetup) -> None:
    study.set_user_attr(STUDY_CONFIG, setup.config)
    study.set_user_attr(STUDY_BUDGET, setup.budget)
    study.set_user_attr(STUDY_FINGERPRINT, setup.fingerprint)
    study.set_user_attr(STUDY_BUNDLE_PATH, str(setup.bundle_path))
    write_artifact_store(study, setup.artifact_store)


def mark_ready(study: Attributed) -> None:
    study.set_user_attr(STUDY_READY, True)


def is_ready(study: Attributed) -> bool:
    return bool(study.user_attrs.get(STUDY_READY))


def read_config_dict(study: Attributed) -> dict[str, Any]:
    return dict(study.user_attrs[STUDY_CONFIG])


def write_budget(study: Attributed, n_trials: int) -> None:
    study.set_user_attr(STUDY_BUDGET, n_trials)


def read_budget(study: Readable) -> int:
    return int(study.user_attrs[STUDY_BUDGET])


def read_fingerprint(study: Attributed) -> dict[str, Any]:
    return dict(study.user_attrs[STUDY_FINGERPRINT])


def read_bundle_path(study: Attributed) -> Path:
    return Path(study.user_attrs[STUDY_BUNDLE_PATH])


def write_warm_start_notes(study: Attributed, notes: list[str]) -> None:
    study.set_user_attr(STUDY_WARM_START_NOTES, list(notes))


def read_warm_start_notes(study: Attributed) -> list[str]:
    return [str(note) for note in study.user_attrs.get(STUDY_WARM_START_NOTES, [])]


def write_artifact_store(study: Attributed, location: str | None) -> None:
    if location is not None:
        study.set_user_attr(STUDY_ARTIFACT_STORE, location)


def read_artifact_store(study: Readable) -> str | None:
    location = study.user_attrs.get(STUDY_ARTIFACT_STORE)
    return None if location is None else str(location)


def read_reevaluations(study: Attributed) -> dict[int, dict[int, float]]:
    """Fresh-seed FIDs: trial number -> seed -> FID."""
    stored = study.user_attrs.get(STUDY_REEVALUATIONS, {})
    return {
        int(trial): {int(seed): float(fid) for seed, fid in by_seed.items()}
        for trial, by_seed in stored.items()
    }


def add_reevaluation(study: Attributed, results: dict[int, float], seed: int) -> None:
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


def write_noise_floor(study: Attributed, floor: NoiseFloor) -> None:
    study.set_user_attr(
        STUDY_NOISE_FLOOR,
        {
            "warm_start": floor.warm_start,
            "seeds": list(floor.seeds),
            "fids": {str(rung): list(values) for rung, values in floor.fids.items()},
        },
    )


def read_noise_floor(study: Attributed) -> NoiseFloor | None:
    stored = study.user_attrs.get(STUDY_NOISE_FLOOR)
    if stored is None:
        return None
    return NoiseFloor(
        warm_start=str(stored["warm_start"]),
        seeds=tuple(int(s) for s in stored["seeds"]),
        fids={int(r): tuple(float(f) for f in v) for r, v in stored["fids"].items()},
    )


def write_noise_floor_claim(study: Attributed, when: float) -> None:
    study.set_user_attr(STUDY_NOISE_FLOOR_CLAIM, when)


def read_noise_floor_claim(study: Attributed) -> float | None:
    when = study.user_attrs.get(STUDY_NOISE_FLOOR_CLAIM)
    return None if when is None else float(when)
