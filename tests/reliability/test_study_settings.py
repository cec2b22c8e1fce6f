"""What belongs to a study (its heartbeat) and what each node chooses (its batch size)."""

import uuid

import pytest

from autonat_search.config import parse_study_config
from autonat_search.errors import ConfigError
from autonat_search.storage import open_storage
from autonat_search.study import start_study, study_config


def _data(bundle, **overrides):
    data = {
        "name": f"settings-{uuid.uuid4().hex[:8]}",
        "bundle": str(bundle),
        "steps": 4,
        "budget": {"n_trials": 5},
        "fidelity": {"rungs": [8, 16]},
        "samples": {"chunk": 4, "batch_size": 8},
        "device": {"kind": "cpu", "precision": "fp32"},
        "heartbeat": {"interval": 5, "grace_period": 20},
    }
    data.update(overrides)
    return data


def test_a_grace_period_shorter_than_three_intervals_is_one_line(tiny_bundle_path):
    data = _data(tiny_bundle_path, heartbeat={"interval": 30, "grace_period": 5})
    with pytest.raises(ConfigError) as caught:
        parse_study_config(data)
    message = str(caught.value)
    assert message == ("heartbeat.grace_period = 5 must be at least 3 x heartbeat.interval = 90 s")


def test_the_heartbeat_is_stored_in_the_study(tmp_path, tiny_bundle_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study, _ = start_study(parse_study_config(_data(tiny_bundle_path)), storage)
    heartbeat = study_config(study).heartbeat
    assert (heartbeat.interval, heartbeat.grace_period) == (5, 20)


def test_the_batch_size_is_not_part_of_the_study(tmp_path, tiny_bundle_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    config = parse_study_config(_data(tiny_bundle_path))
    start_study(config, storage)
    other_node = parse_study_config(
        _data(tiny_bundle_path, name=config.name, samples={"chunk": 4, "batch_size": 32})
    )
    _, outcome = start_study(other_node, storage)
    assert "nothing to do" in outcome
    assert config.with_batch_size(12).samples.batch_size == 12
    with pytest.raises(ConfigError, match="batch size 10 must be a positive multiple of"):
        config.with_batch_size(10)
