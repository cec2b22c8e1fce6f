"""Study files naming the finite-difference sampler and the raw and centred spaces."""

import pytest

from autonat_search.config import parse_study_config
from autonat_search.errors import ConfigError

BASE = {
    "name": "t",
    "bundle": "bundle.yaml",
    "steps": 4,
    "budget": {"n_trials": 10},
    "fidelity": {"rungs": [100, 200]},
    "samples": {"chunk": 50, "batch_size": 100},
}


def _config(**sections):
    return parse_study_config({**BASE, **sections})


def test_finite_difference_on_the_raw_space_with_gradient_clipping():
    config = _config(sampler={"name": "finite-difference", "grad_clip": 5}, space={"kind": "raw"})
    assert config.sampler.grad_clip == 5.0 and config.space.kind == "raw"
    assert config.space.ranges["cfg"] == (0.0, 4.0)
    assert parse_study_config(config.to_dict()) == config


def test_centred_space_parses_and_round_trips():
    config = _config(space={"kind": "centered", "ranges": {"cfg": [0, 3]}})
    assert config.space.kind == "centered" and config.space.ranges["cfg"] == (0.0, 3.0)
    assert parse_study_config(config.to_dict()) == config


def test_stored_configs_of_other_samplers_do_not_change():
    assert "grad_clip" not in _config().to_dict()["sampler"]  # old studies still reconcile


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"sampler": {"name": "finite-difference"}},
            "sampler.name finite-difference works on the raw per-step numbers: space.kind "
            "must be raw, got per-step",
        ),
        (
            {"sampler": {"name": "finite-difference", "grad_clip": 0}, "space": {"kind": "raw"}},
            "sampler.grad_clip must be a number > 0, got 0",
        ),
        (
            {"sampler": {"name": "tpe", "grad_clip": 1.0}},
            "sampler.grad_clip is for the finite-difference sampler, not tpe",
        ),
        (
            {"space": {"kind": "centered", "ranges": {"mask_exponent": [1, 2]}}},
            "unknown key space.ranges.mask_exponent for space.kind centered",
        ),
    ],
)
def test_bad_combinations_name_their_key(sections, message):
    with pytest.raises(ConfigError) as error:
        _config(**sections)
    assert message in str(error.value)
