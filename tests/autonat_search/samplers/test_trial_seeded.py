"""Reproducible studies: a trial's random choices come from (sampler seed, trial number)."""

import threading

import optuna
import pytest
import yaml

from autonat_search.config import SamplerConfig, load_study_config
from autonat_search.execution.trial_loop import WorkerOptions, run_study_trials
from autonat_search.samplers import TrialSeededSampler, build_sampler, trial_seed
from autonat_search.storage import open_storage
from autonat_search.study import start_study
from nat_core.pipeline import load_bundle

optuna.logging.set_verbosity(optuna.logging.WARNING)
NAMES = ("tpe", "gp", "cmaes", "random")


def _quadratic(trial: optuna.Trial) -> float:
    xs = [trial.suggest_float(f"x{i}", -2.0, 2.0) for i in range(3)]
    return sum((x - 0.3 * i) ** 2 for i, x in enumerate(xs))


def _run(name: str, seed: int, n_trials: int = 14) -> list[tuple[dict, float]]:
    sampler = TrialSeededSampler(lambda s: build_sampler(SamplerConfig(name=name), seed=s), seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_quadratic, n_trials=n_trials)
    return [(t.params, t.value) for t in study.trials]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("name", NAMES)
def test_every_sampler_repeats_its_trials_and_the_seed_matters(name):
    first = _run(name, seed=3)
    assert _run(name, seed=3) == first
    assert _run(name, seed=4) != first


def test_each_trial_has_its_own_seed():
    seeds = {trial_seed(0, n) for n in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**32 for s in seeds)
    assert trial_seed(0, 5) != trial_seed(1, 5)


def test_a_trial_draws_the_same_whatever_ran_before_it_in_the_process():
    """Two samplers that served different trials earlier agree on trial 7 of one study."""
    study = optuna.create_study()
    for _ in range(8):
        study.enqueue_trial({"x": 0.5})
    factory = lambda s: optuna.samplers.RandomSampler(seed=s)  # noqa: E731
    busy, fresh = TrialSeededSampler(factory, 0), TrialSeededSampler(factory, 0)
    trials = [study.ask() for _ in range(8)]
    for trial in trials[:7]:  # only ``busy`` drew for the earlier trials
        busy.sample_independent(study, trial._cached_frozen_trial, "y", _FLOAT)
    last = trials[7]._cached_frozen_trial
    assert busy.sample_independent(study, last, "y", _FLOAT) == fresh.sample_independent(
        study, last, "y", _FLOAT
    )


_FLOAT = optuna.distributions.FloatDistribution(0.0, 1.0)


def _study_file(tmp_path, bundle, sampler: str):
    data = {
        "name": "repro",
        "bundle": str(bundle),
        "steps": 4,
        "space": {"kind": "per-step"},
        "sampler": {"name": sampler, "seed": 5},
        "fidelity": {"rungs": [20, 40], "pruner": "successive-halving", "reduction_factor": 2},
        "budget": {"n_trials": 6},
        "samples": {"seed": 1, "chunk": 20, "batch_size": 40},
        "device": {"kind": "cpu", "precision": "fp32"},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("sampler", ["tpe"])
def test_one_actor_running_a_study_file_twice_gives_identical_trials(
    tmp_path, quick_digits_bundle, sampler
):
    path = _study_file(tmp_path, quick_digits_bundle, sampler)
    bundle = load_bundle(quick_digits_bundle)
    runs = []
    for run in ("a", "b"):
        url = f"sqlite:///{tmp_path / f'{run}.db'}"
        start_study(load_study_config(path), open_storage(url))
        options = WorkerOptions(storage_url=url, study_name="repro", poll_seconds=0.05)
        run_study_trials(bundle, options, device_name="cpu", stop=threading.Event())
        trials = optuna.load_study(study_name="repro", storage=open_storage(url)).trials
        runs.append([(t.number, t.state, t.params, t.value, t.intermediate_values) for t in trials])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 6 and len({str(params) for _, _, params, _, _ in runs[0]}) == 6
