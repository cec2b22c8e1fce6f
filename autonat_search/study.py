"""Creating a study from a config, and reading what a study recorded about itself.

A study stores its whole config, its budget, its bundle's fingerprint and the bundle path
as user attributes. ``start_study`` is idempotent: the same config gives the same study; a
different config under the same name is an error, except a raised budget.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from autonat_search.config import StudyConfig, parse_study_config
from autonat_search.errors import ConfigError, StudyError
from autonat_search.objective import STRATEGY_ATTR, WARM_START_ATTR
from autonat_search.space import build_space
from autonat_search.storage import StudyLock, guarded, load_study, storage_url_of
from nat_core.bundle import BundleError, read_bundle
from nat_core.strategy import GenerationStrategy

CONFIG_ATTR = "config"
BUDGET_ATTR = "n_trials"
FINGERPRINT_ATTR = "bundle_fingerprint"
BUNDLE_PATH_ATTR = "bundle_path"
READY_ATTR = "ready"
NOTES_ATTR = "warm_start_notes"
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


PlannedWarmStart = tuple[WarmStart, dict[str, Any], float]


def _plan_warm_starts(config: StudyConfig) -> list[PlannedWarmStart]:
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


def _enqueue(study: optuna.Study, planned: list[PlannedWarmStart], kind: str) -> list[str]:
    notes = []
    for start, params, deviation in planned:
        attrs: dict[str, Any] = {WARM_START_ATTR: start.label}
        if deviation == 0.0:
            attrs[STRATEGY_ATTR] = start.strategy.to_reference_dict()
            notes.append(f"{start.label}: enqueued exactly")
        else:
            notes.append(
                f"{start.label}: enqueued its nearest point of the {kind} space "
                f"(largest deviation {deviation:.4g})"
            )
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
            if study.user_attrs.get(READY_ATTR):
                return study, _reconcile(study, config)
        else:
            study = guarded(
                lambda: optuna.create_study(
                    study_name=config.name, storage=storage, direction="minimize"
                ),
                url,
            )
        # A new study, or one whose set-up was interrupted: (re)write everything, then mark it.
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        study.set_user_attr(BUDGET_ATTR, config.n_trials)
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        study.set_user_attr(BUNDLE_PATH_ATTR, str(bundle_path))
        if not study.get_trials(deepcopy=False):
            study.set_user_attr(NOTES_ATTR, _enqueue(study, planned, config.space.kind))
        study.set_user_attr(READY_ATTR, True)
        return study, f"created study {config.name!r}"


def _reconcile(study: optuna.Study, config: StudyConfig) -> str:
    stored = dict(study.user_attrs[CONFIG_ATTR])
    new = config.to_dict()
    old_budget = study.user_attrs[BUDGET_ATTR]
    changes = _differences({**stored, "budget": None}, {**new, "budget": None})
    if changes:
        raise StudyError(
            f"study {config.name!r} exists with a different config ({'; '.join(changes)}); "
            "only budget.n_trials may change: use a new name for a new study"
        )
    if config.n_trials < old_budget:
        raise StudyError(
            f"budget.n_trials can only be raised: study {config.name!r} has {old_budget}, "
            f"the config asks for {config.n_trials}"
        )
    if config.n_trials > old_budget:
        study.set_user_attr(BUDGET_ATTR, config.n_trials)
        return f"study {config.name!r} exists; budget raised from {old_budget} to {config.n_trials}"
    return f"study {config.name!r} exists with this config; nothing to do"


def study_config(study: optuna.Study) -> StudyConfig:
    attrs = study.user_attrs
    if not attrs.get(READY_ATTR):
        raise StudyError(f"study {study.study_name!r} was not created by start-study")
    config = parse_study_config(attrs[CONFIG_ATTR], source_dir=Path("."))
    config = config.with_budget(int(attrs[BUDGET_ATTR]))
    return config


def bundle_path(study: optuna.Study) -> Path:
    return Path(study.user_attrs[BUNDLE_PATH_ATTR])


def state_counts(study: optuna.Study) -> Counter[TrialState]:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def finished(counts: Counter[TrialState]) -> int:
    return counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
