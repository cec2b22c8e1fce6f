"""The raw per-step space (the finite-difference search's) and the centred per-step space."""

import numpy as np
import optuna
import pytest

from autonat_search.config import DEFAULT_RANGES, SpaceConfig
from autonat_search.errors import ConfigError
from autonat_search.space import build_space
from autonat_search.spaces.centered import CENTRE_WIDTHS, CenteredSpace
from autonat_search.spaces.raw import RawStepSpace
from autonat_search.study import PUBLISHED_T8
from nat_core.strategy import GenerationStrategy

RANGES = {k: DEFAULT_RANGES[k] for k in ("mask_ratio", "remask_temp", "sample_temp", "cfg")}
INITIAL = GenerationStrategy.reference_initial(8)
PUBLISHED = GenerationStrategy.load(PUBLISHED_T8)


def _suggest(space, params=None, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    if params is not None:
        study.enqueue_trial(params)
    trial = study.ask()
    return space.suggest(trial), trial


def test_build_space_knows_both_kinds():
    assert isinstance(build_space(SpaceConfig("raw", RANGES), steps=4), RawStepSpace)
    assert isinstance(build_space(SpaceConfig("centered", RANGES), steps=4), CenteredSpace)


@pytest.mark.parametrize("space_class", [RawStepSpace, CenteredSpace])
def test_parameters_are_the_readable_per_step_numbers(space_class):
    strategy, trial = _suggest(space_class(steps=3, ranges=RANGES))
    assert list(trial.params) == [
        "mask_ratio_1",
        "mask_ratio_2",
        "remask_temp_1",
        "remask_temp_2",
        "sample_temp_1",
        "sample_temp_2",
        "sample_temp_3",
        "cfg_1",
        "cfg_2",
        "cfg_3",
    ]
    values = np.array(list(trial.params.values()))
    assert np.array_equal(np.asarray(strategy.to_vector())[2:], values[2:])


@pytest.mark.parametrize("space_class", [RawStepSpace, CenteredSpace])
@pytest.mark.parametrize("target", [INITIAL, PUBLISHED], ids=["initial", "published"])
def test_warm_starts_are_exact(space_class, target):
    space = space_class(steps=8, ranges=RANGES)
    params, deviation = space.params_for(target)
    assert deviation == 0.0
    assert list(params.values()) == target.to_vector()  # the parameters are the numbers
    strategy, _ = _suggest(space, params)
    assert strategy == target


def test_the_centred_space_is_centred_on_the_reference_initial_schedule():
    space = CenteredSpace(steps=8, ranges=RANGES)
    low, high = np.array(space.windows()).T
    centre = np.asarray(INITIAL.to_vector())
    uncut = slice(2, 7)  # the first two ratio windows end at 1.0, the top of the range
    np.testing.assert_allclose((low[uncut] + high[uncut]) / 2, centre[uncut], atol=1e-15)
    np.testing.assert_allclose(high[uncut] - low[uncut], 2 * CENTRE_WIDTHS["mask_ratio"])
    np.testing.assert_array_equal(high[:2], 1.0)
    np.testing.assert_allclose(low[:2], centre[:2] - CENTRE_WIDTHS["mask_ratio"])
    assert np.all(low <= centre) and np.all(centre <= high)
    assert np.all(low >= 0.0) and high[7:].max() <= 4.0  # cut by space.ranges


def test_random_centred_points_keep_ratios_non_increasing_near_the_centre():
    space = CenteredSpace(steps=8, ranges=RANGES)
    centre = np.asarray(INITIAL.mask_ratios)
    first_ratios = []
    for seed in range(40):
        strategy, trial = _suggest(space, seed=seed)
        ratios = np.asarray(strategy.mask_ratios)
        assert np.all(np.diff(ratios) <= 0)
        assert np.all(ratios <= centre + CENTRE_WIDTHS["mask_ratio"])
        drawn = np.array([trial.params[f"mask_ratio_{t}"] for t in range(1, 8)])
        np.testing.assert_array_equal(ratios, np.minimum.accumulate(drawn))
        first_ratios.append(ratios[0])
    assert min(first_ratios) > centre[0] - CENTRE_WIDTHS["mask_ratio"]  # never near 0
    assert any(np.any(np.diff(_suggest(space, seed=s)[0].mask_ratios) == 0) for s in range(40))


def test_a_schedule_outside_the_windows_enqueues_its_nearest_point():
    space = CenteredSpace(steps=3, ranges=RANGES)
    wide = GenerationStrategy([0.2, 0.1], [1.0, 0.5], [1.0, 1.0, 1.0], [0.0, 0.5, 3.5])
    params, deviation = space.params_for(wide)
    # cos(pi/6) - 0.15 is the lowest first ratio; cfg_3's window ends at 1 + 2.
    assert params["mask_ratio_1"] == pytest.approx(np.cos(np.pi / 6) - 0.15)
    assert params["cfg_3"] == 3.0
    assert deviation == pytest.approx(max(np.cos(np.pi / 6) - 0.15 - 0.2, 0.5))


def test_raw_space_refuses_numbers_outside_the_ranges():
    space = RawStepSpace(steps=3, ranges={**RANGES, "cfg": (0.0, 2.0)})
    hot = GenerationStrategy([0.6, 0.3], [1, 1], [1, 1, 1], [0, 0, 3])
    with pytest.raises(ConfigError, match=r"cfg_3 = 3.0 is outside space.ranges.cfg \[0.0, 2.0\]"):
        space.params_for(hot)
    with pytest.raises(ConfigError, match="a warm start has 8 steps; the study has 3"):
        space.params_for(INITIAL)
