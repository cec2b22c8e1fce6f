"""Creating a study from a config, and reading what a study recorded about itself.

A study stores its whole config, its budget, its bundle's fingerprint and the bundle path
as user attributes (see ``records``). ``start_study`` is idempotent: the same config gives
the same study; a different config under the same name is an error, except a raised budget.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.config import StudyConfig, parse_study_config, study_identity
from autonat_search.errors import ConfigError, StudyError
from autonat_search.notes import write_study_presentation
from autonat_search.samplers.finite_difference import study_notes
from autonat_search.space import build_space
from autonat_search.storage import StudyLock, guarded, load_study, storage_url_of
from nat_core.bundle_file import BundleError, read_bundle
from nat_core.strategy import GenerationStrategy

__all__ = [
    "PUBLISHED_T8",
    "WarmStart",
    "finished",
    "start_study",
    "state_counts",
    "study_config",
    "warm_starts",
]

PUBLISHED_T8 = Path(__file__).with_name("data") / "autonat_l_t8_strategy.yaml"


@dataclass(frozen=True)
class WarmStart:
    label: str
    strategy: GenerationStrategy


def warm_starts(config: StudyConfig) -> list[WarmStart]:
    out = []
    for entry in config.warm_start:
        if entry == "reference-initial":
            out.append(WarmStart(entry, GenerationStrategy.reference_initial(config.steps)))
        elif entry == "autonat-l-t8-published":
            out.append(WarmStart(entry, GenerationStrategy.load(PUBLISHED_T8)))
        else:
            out.append(WarmStart(entry, GenerationStrategy.load(config.warm_start_path(entry))))
    return out


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


_PlannedWarmStart = tuple[WarmStart, dict[str, Any], float]


def _plan_warm_starts(config: StudyConfig) -> list[_PlannedWarmStart]:
    """Parameters of every warm start, found before anything is written."""
    space = build_space(config.space, steps=config.steps)
    planned = []
    for start in warm_starts(config):
        try:
            params, deviation = space.params_for(start.strategy)
        except ConfigError as error:
            raise ConfigError(f"warm start {start.label}: {error}") from None
        planned.append((start, params, deviation))
    return planned


def _enqueue(study: optuna.Study, planned: list[_PlannedWarmStart], kind: str) -> list[str]:
    notes = []
    for start, params, deviation in planned:
        exact = deviation == 0.0
        if exact:
            notes.append(f"{start.label}: enqueued exactly")
        else:
            notes.append(
                f"{start.label}: enqueued its nearest point of the {kind} space "
                f"(largest deviation {deviation:.4g})"
            )
        attrs = records.enqueued_trial_attrs(start.label, start.strategy if exact else None)
        study.enqueue_trial(params, user_attrs=attrs)
    return notes


def start_study(
    config: StudyConfig, storage: optuna.storages.RDBStorage
) -> tuple[optuna.Study, str]:
    """Create (or find) the study of ``config``; returns it and what happened, in words."""
    bundle_path = config.bundle_path()
    try:
        fingerprint = read_bundle(bundle_path).fingerprint()
    except BundleError as error:
        raise ConfigError(f"bundle: {error}") from None
    planned = _plan_warm_starts(config)
    url = storage_url_of(storage)
    with StudyLock(url, config.name).held():
        names = guarded(
            lambda: [s.study_name for s in optuna.get_all_study_summaries(storage)], url
        )
        if config.name in names:
            study = load_study(storage, config.name)
            if records.is_ready(study):
                return study, _reconcile(study, config)
        else:
            study = guarded(
                lambda: optuna.create_study(
                    study_name=config.name, storage=storage, direction="minimize"
                ),
                url,
            )
        # A new study, or one whose set-up was interrupted: (re)write everything, then mark it.
        setup = records.StudySetup(
            config=config.to_dict(),
            budget=config.n_trials,
            fingerprint=fingerprint,
            bundle_path=bundle_path,
            artifact_store=config.artifact_location(),
        )
        records.write_study_setup(study, setup)
        if not study.get_trials(deepcopy=False):
            notes = _enqueue(study, planned, config.space.kind) + study_notes(config)
            records.write_warm_start_notes(study, notes)
        write_study_presentation(study, config)
        records.mark_ready(study)
        return study, f"created study {config.name!r}"


def _reconcile(study: optuna.Study, config: StudyConfig) -> str:
    stored = records.read_config_dict(study)
    new = config.to_dict()
    old_budget = records.read_budget(study)
    changes = _differences(
        {**study_identity(stored), "budget": None}, {**study_identity(new), "budget": None}
    )
    if changes:
        raise StudyError(
            f"study {config.name!r} exists with a different config ({'; '.join(changes)}); "
            "only budget.n_trials may change (samples.batch_size is each worker's choice: "
            "worker --batch-size): use a new name for a new study"
        )
    if config.n_trials < old_budget:
        raise StudyError(
            f"budget.n_trials can only be raised: study {config.name!r} has {old_budget}, "
            f"the config asks for {config.n_trials}"
        )
    if config.n_trials > old_budget:
        records.write_budget(study, config.n_trials)
        write_study_presentation(study, config)
        return f"study {config.name!r} exists; budget raised from {old_budget} to {config.n_trials}"
    return f"study {config.name!r} exists with this config; nothing to do"


def study_config(study: optuna.Study) -> StudyConfig:
    """The config a study was created with (and its budget now)."""
    if not records.is_ready(study):
        raise StudyError(f"study {study.study_name!r} was not created by start-study")
    config = parse_study_config(records.read_config_dict(study), source_dir=Path("."))
    return config.with_budget(records.read_budget(study))


def state_counts(study: optuna.Study) -> Counter[TrialState]:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def finished(counts: Counter[TrialState]) -> int:
    return counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
