import optuna
import pytest

from autonat_search.config import FidelityConfig, SamplerConfig
from autonat_search.samplers import RungPruner, build_pruner, build_sampler


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("gp", optuna.samplers.GPSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("random", optuna.samplers.RandomSampler),
    ],
)
def test_every_config_sampler_name_builds_its_sampler(name, kind):
    assert isinstance(build_sampler(SamplerConfig(name=name), seed=3), kind)


def test_samplers_with_equal_seeds_propose_equal_points():
    def first_point(seed: int) -> float:
        study = optuna.create_study(sampler=build_sampler(SamplerConfig(name="random"), seed=seed))
        return study.ask().suggest_float("x", 0.0, 1.0)

    assert first_point(5) == first_point(5) != first_point(6)


def test_pruners():
    halving = build_pruner(FidelityConfig(rungs=(40, 80), reduction_factor=2))
    assert isinstance(halving, RungPruner) and halving.rungs == (40, 80)
    optuna_halving = build_pruner(
        FidelityConfig(rungs=(40, 80), pruner="optuna-successive-halving", reduction_factor=2)
    )
    assert isinstance(optuna_halving, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(build_pruner(FidelityConfig(pruner="median")), optuna.pruners.MedianPruner)
    assert isinstance(build_pruner(FidelityConfig(pruner="none")), optuna.pruners.NopPruner)
