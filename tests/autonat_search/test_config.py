import pytest
import yaml

from autonat_search.config import load_study_config, parse_study_config
from autonat_search.errors import ConfigError

BASE = {
    "name": "t",
    "bundle": "bundle.yaml",
    "steps": 4,
    "budget": {"n_trials": 10},
    "fidelity": {"rungs": [100, 200]},
    "samples": {"chunk": 50, "batch_size": 100},
}


def _with(**changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


def test_defaults_and_canonical_form():
    config = parse_study_config(BASE)
    assert config.space.kind == "per-step"
    assert config.space.ranges["cfg"] == (0.0, 4.0)
    assert config.full_samples == 200
    data = config.to_dict()
    assert data["budget"] == {"n_trials": 10}
    assert parse_study_config(data) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": 1}, "unknown key colour"),
        ({"space__rangez": {}}, "unknown key space.rangez"),
        ({"space__ranges": {"mask_exponent": [1, 2]}}, "space.ranges.mask_exponent"),
        ({"space__ranges": {"cfg": [3, 1]}}, "space.ranges.cfg must be [low, high]"),
        ({"space__kind": "grid"}, "space.kind must be one of"),
        ({"sampler__name": "annealing"}, "sampler.name must be one of"),
        ({"fidelity__rungs": [100, 120]}, "fidelity.rungs[1] = 120 is not a multiple"),
        ({"fidelity__rungs": [200, 100]}, "fidelity.rungs must increase"),
        ({"fidelity__pruner": "hyper"}, "fidelity.pruner must be one of"),
        ({"budget__n_trials": 0}, "budget.n_trials must be an integer >= 1, got 0"),
        ({"samples__batch_size": 75}, "samples.batch_size = 75 is not a multiple"),
        ({"samples__labels": "random"}, "samples.labels must be one of"),
        ({"device__kind": "tpu"}, "device.kind must be one of"),
        ({"device__precision": "int8"}, "device.precision must be one of"),
        ({"steps": 1}, "steps must be an integer >= 2"),
        ({"warm_start": ["autonat-l-t8-published"]}, "is an 8-step strategy; steps is 4"),
        ({"warm_start": ["best-guess"]}, "warm_start[0] must be one of"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_bad_values_name_their_key(changes, message):
    with pytest.raises(ConfigError) as error:
        parse_study_config(_with(**changes))
    assert message in str(error.value)


def test_shipped_study_files_parse():
    from pathlib import Path

    studies = Path(__file__).resolve().parents[2] / "studies"
    autonat = load_study_config(studies / "autonat_l_t8.yaml")
    assert autonat.steps == 8 and autonat.fidelity.rungs == (5000, 10000, 50000)
    assert autonat.device.kind == "cuda"
    assert autonat.bundle_path().name == "autonat_l_imagenet256.yaml"
    demo = load_study_config(studies / "digits_demo.yaml")
    assert demo.device.kind == "cpu"
    assert demo.bundle_path().is_file()


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_with(steps="eight")))
    with pytest.raises(ConfigError, match=r"s\.yaml: steps must be an integer"):
        load_study_config(path)
    with pytest.raises(ConfigError, match="study file not found"):
        load_study_config(tmp_path / "none.yaml")
