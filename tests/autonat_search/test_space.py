import numpy as np
import optuna
import pytest

from autonat_search.config import DEFAULT_RANGES, SpaceConfig
from autonat_search.errors import ConfigError
from autonat_search.space import ParametricSpace, PerStepSpace, build_space, space_distributions
from autonat_search.study import PUBLISHED_T8
from nat_core.strategy import GenerationStrategy

RANGES = dict(DEFAULT_RANGES)


def _suggest(space, params=None, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    if params is not None:
        study.enqueue_trial(params)
    trial = study.ask()
    return space.suggest(trial), trial


@pytest.mark.parametrize("kind", ["per-step", "parametric"])
def test_random_points_have_decreasing_ratios(kind):
    space = build_space(SpaceConfig(kind=kind, ranges=RANGES), steps=8)
    for seed in range(20):
        strategy, _ = _suggest(space, seed=seed)
        ratios = np.asarray(strategy.mask_ratios)
        assert strategy.steps == 8
        assert np.all(np.diff(ratios) <= 0)
        assert ratios.min() >= 0 and ratios.max() <= 1


def test_per_step_space_has_all_4t_minus_2_numbers():
    _, trial = _suggest(PerStepSpace(steps=8, ranges=RANGES))
    assert len(trial.params) == 4 * 8 - 2


@pytest.mark.parametrize("which", ["published", "initial"])
def test_per_step_warm_starts_are_exactly_representable(which):
    target = (
        GenerationStrategy.load(PUBLISHED_T8)
        if which == "published"
        else GenerationStrategy.reference_initial(8)
    )
    space = PerStepSpace(steps=8, ranges=RANGES)
    params, deviation = space.params_for(target)
    assert deviation == 0.0
    strategy, _ = _suggest(space, params)
    np.testing.assert_allclose(strategy.to_vector(), target.to_vector(), rtol=0, atol=1e-12)


def test_per_step_rejects_increasing_ratios_and_out_of_range_values():
    space = PerStepSpace(steps=3, ranges=RANGES)
    rising = GenerationStrategy([0.3, 0.6], [1, 1], [1, 1, 1], [0, 0, 0])
    with pytest.raises(ConfigError, match=r"mask_ratios\[1\] = 0.6 is outside"):
        space.params_for(rising)
    hot = GenerationStrategy([0.6, 0.3], [1, 9], [1, 1, 1], [0, 0, 0])
    with pytest.raises(ConfigError, match="remask_temp_2 = 9.0 is outside"):
        space.params_for(hot)


def test_parametric_represents_the_reference_initial_schedule_exactly():
    space = ParametricSpace(steps=8, ranges=RANGES, families=("cosine", "power"))
    params, deviation = space.params_for(GenerationStrategy.reference_initial(8))
    assert params["mask_family"] == "cosine"
    assert deviation < 1e-6


def test_parametric_fits_the_published_strategy_nearby():
    space = ParametricSpace(steps=8, ranges=RANGES, families=("cosine", "power"))
    published = GenerationStrategy.load(PUBLISHED_T8)
    params, deviation = space.params_for(published)
    assert params["cfg_warmup"] == 3  # the published schedule has no guidance for 3 steps
    fitted = space.strategy(params)
    assert np.max(np.abs(np.subtract(fitted.to_vector(), published.to_vector()))) == pytest.approx(
        deviation
    )
    assert 0 < deviation < 1.5
    strategy, _ = _suggest(space, params)
    assert strategy == fitted


@pytest.mark.parametrize("kind", ["per-step", "parametric", "raw", "centered"])
def test_space_distributions_are_what_every_trial_suggests(kind):
    space = build_space(SpaceConfig(kind=kind, ranges=RANGES), steps=8)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        trial = study.ask()
        space.suggest(trial)
        assert trial.distributions == space_distributions(space)
