"""The finite-difference search through the real FID objective: top rung only, no pruning."""

import optuna
import pytest

from autonat_search.config import parse_study_config
from autonat_search.execution.objective import FidObjective
from autonat_search.records import TRIAL_FID_PER_RUNG as FID_ATTR
from autonat_search.records import TRIAL_IMAGES as IMAGES_ATTR
from autonat_search.records import TRIAL_STRATEGY as STRATEGY_ATTR
from autonat_search.samplers.finite_difference import COORDINATE_ATTR, FiniteDifferenceSampler
from autonat_search.space import build_space
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

CONFIG = {
    "name": "fd-objective",
    "bundle": "unused.yaml",
    "steps": 4,
    "budget": {"n_trials": 2},
    "space": {"kind": "raw"},
    "sampler": {"name": "finite-difference"},
    "fidelity": {"rungs": [20, 40, 60], "pruner": "successive-halving"},
    "samples": {"chunk": 20, "batch_size": 40, "seed": 2},
    "device": {"kind": "cpu", "precision": "fp32"},
}


def test_every_trial_is_evaluated_at_the_top_rung_only(quick_digits_bundle):
    config = parse_study_config(CONFIG)
    objective = FidObjective(
        bundle=load_bundle(quick_digits_bundle),
        space=build_space(config.space, steps=config.steps),
        config=config,
        device_name="cpu",
    )
    study = optuna.create_study(
        sampler=FiniteDifferenceSampler.for_study(config), pruner=optuna.pruners.NopPruner()
    )
    study.optimize(objective, n_trials=2)
    centre, probe = study.trials
    for trial in (centre, probe):
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert list(trial.intermediate_values) == [60]
        assert trial.user_attrs[IMAGES_ATTR] == 60 and list(trial.user_attrs[FID_ATTR]) == ["60"]
    initial = GenerationStrategy.reference_initial(4)
    assert centre.user_attrs[STRATEGY_ATTR] == initial.to_reference_dict()
    assert probe.user_attrs[COORDINATE_ATTR] == 0
    probed = probe.user_attrs[STRATEGY_ATTR]["manual_ratios"]
    assert probed[0] == pytest.approx(initial.mask_ratios[0] + 0.01, abs=1e-15)
    assert probed[1:] == list(initial.mask_ratios[1:])
