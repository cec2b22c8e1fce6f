"""The objective in one process: rungs, reuse of earlier samples, non-finite FIDs."""

import threading

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search.config import parse_study_config
from autonat_search.execution import objective as objective_module
from autonat_search.execution.evaluation import evaluate_chunks, sample_plan
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.trial_loop import run_trial_loop
from autonat_search.records import (
    STUDY_BUDGET,
    TRIAL_FAIL_REASON,
    TRIAL_FID_PER_RUNG,
    TRIAL_IMAGES,
    TRIAL_STRATEGY,
)
from autonat_search.space import build_space
from autonat_search.storage import StudyLock, open_storage
from nat_core.fid import fid_from_stats
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

CONFIG = {
    "name": "objective",
    "bundle": "unused.yaml",
    "steps": 4,
    "budget": {"n_trials": 3},
    "fidelity": {"rungs": [40, 80, 120], "pruner": "none"},
    "samples": {"chunk": 20, "batch_size": 40, "seed": 2},
    "device": {"kind": "cpu", "precision": "fp32"},
}


@pytest.fixture(scope="module")
def bundle(quick_digits_bundle):
    return load_bundle(quick_digits_bundle)


def _objective(bundle):
    config = parse_study_config(CONFIG)
    return FidObjective(
        bundle=bundle, space=build_space(config.space, steps=4), config=config, device_name="cpu"
    ), config


def test_rungs_reuse_earlier_samples_and_match_a_one_shot_evaluation(bundle):
    objective, config = _objective(bundle)
    study = optuna.create_study()
    calls = []
    original = bundle.sample_features

    def counting(strategy, labels, generator, **kwargs):
        calls.append(len(labels))
        return original(strategy, labels, generator, **kwargs)

    bundle.sample_features = counting
    try:
        study.optimize(objective, n_trials=1)
    finally:
        del bundle.sample_features
    trial = study.trials[0]
    assert sum(calls) == 120  # each sample generated once, across the three rungs
    assert sorted(trial.intermediate_values) == [40, 80, 120]
    assert trial.user_attrs[TRIAL_IMAGES] == 120
    assert set(trial.user_attrs[TRIAL_FID_PER_RUNG]) == {"40", "80", "120"}
    strategy = GenerationStrategy.from_reference_dict(trial.user_attrs[TRIAL_STRATEGY])
    plan = sample_plan(config)
    stats = evaluate_chunks(bundle, strategy, plan.chunks_between(0, 120), plan)
    direct = fid_from_stats(stats, bundle.reference_mu, bundle.reference_sigma)
    assert trial.value == pytest.approx(direct, rel=1e-9, abs=1e-9)


def test_a_non_finite_fid_fails_the_trial_with_a_reason_and_is_not_counted(
    bundle, tmp_path, monkeypatch
):
    objective, _ = _objective(bundle)
    monkeypatch.setattr(objective_module, "fid_from_stats", lambda *args: float("nan"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="nan", storage=storage)
    study.set_user_attr(STUDY_BUDGET, 2)
    with pytest.raises(Exception, match="2 trials in a row failed"):
        run_trial_loop(
            study,
            objective,
            StudyLock(url, "nan"),
            storage=storage,
            stop=threading.Event(),
            max_consecutive_failures=2,
        )
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert trials[0].user_attrs[TRIAL_FAIL_REASON] == "FID@40 is not finite (nan)"
    assert trials[0].intermediate_values == {}  # never reported as a value
    assert trials[0].value is None
