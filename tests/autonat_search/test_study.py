import uuid

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search.config import parse_study_config
from autonat_search.errors import ConfigError, StudyError
from autonat_search.records import (
    STUDY_BUDGET,
    STUDY_FINGERPRINT,
    TRIAL_STRATEGY,
    TRIAL_WARM_START,
)
from autonat_search.storage import open_storage
from autonat_search.study import start_study, study_config
from nat_core.strategy import GenerationStrategy


def _config(bundle, **overrides):
    data = {
        "name": f"study-{uuid.uuid4().hex[:8]}",
        "bundle": str(bundle),
        "steps": 8,
        "budget": {"n_trials": 5},
        "fidelity": {"rungs": [8, 16]},
        "samples": {"chunk": 4, "batch_size": 8},
        "device": {"kind": "cpu", "precision": "fp32"},
        "warm_start": ["reference-initial", "autonat-l-t8-published"],
    }
    data.update(overrides)
    return parse_study_config(data)


def test_start_study_is_idempotent_and_enqueues_warm_starts(storage_url, tiny_bundle_path):
    storage = open_storage(storage_url)
    config = _config(tiny_bundle_path)
    study, outcome = start_study(config, storage)
    assert outcome.startswith("created")
    again, outcome = start_study(config, storage)
    assert "nothing to do" in outcome
    assert again._study_id == study._study_id
    trials = again.get_trials()
    assert [t.state for t in trials] == [TrialState.WAITING, TrialState.WAITING]
    assert [t.user_attrs[TRIAL_WARM_START] for t in trials] == [
        "reference-initial",
        "autonat-l-t8-published",
    ]
    initial = GenerationStrategy.from_reference_dict(trials[0].user_attrs[TRIAL_STRATEGY])
    assert initial == GenerationStrategy.reference_initial(8)
    assert study_config(again) == config
    assert again.user_attrs[STUDY_FINGERPRINT]["files"]["model.checkpoint"]["size"] > 0


def test_a_changed_config_under_the_same_name_is_rejected(storage_url, tiny_bundle_path):
    storage = open_storage(storage_url)
    config = _config(tiny_bundle_path)
    start_study(config, storage)
    changed = _config(tiny_bundle_path, name=config.name, sampler={"name": "random"})
    with pytest.raises(StudyError, match=r"different config \(sampler\.name: 'tpe' -> 'random'\)"):
        start_study(changed, storage)


def test_only_raising_the_budget_is_allowed(storage_url, tiny_bundle_path):
    storage = open_storage(storage_url)
    config = _config(tiny_bundle_path)
    start_study(config, storage)
    study, outcome = start_study(config.with_budget(9), storage)
    assert "budget raised from 5 to 9" in outcome
    assert study.user_attrs[STUDY_BUDGET] == 9
    with pytest.raises(StudyError, match="can only be raised"):
        start_study(config.with_budget(3), storage)


def test_bad_bundle_or_warm_start_writes_nothing(tmp_path, tiny_bundle_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(ConfigError, match="bundle: bundle file not found"):
        start_study(_config(tmp_path / "missing.yaml"), storage)
    narrow = _config(tiny_bundle_path, space={"ranges": {"sample_temp": [0.0, 2.0]}})
    with pytest.raises(ConfigError, match="autonat-l-t8-published: sample_temp_1 = 2.8999"):
        start_study(narrow, storage)
    assert optuna.get_all_study_summaries(storage) == []
