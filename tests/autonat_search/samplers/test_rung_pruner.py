"""Successive halving on the study's own rungs; a pruner that would skip a rung is refused."""

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from autonat_search.config import load_study_config, parse_study_config
from autonat_search.errors import ConfigError
from autonat_search.samplers import RungPruner, study_pruner

FLAGSHIP = Path(__file__).resolve().parents[3] / "studies" / "autonat_l_t8.yaml"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fake_objective(rungs):
    """FID falls with the sample count; its trial-specific part is ``x``."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 10.0)
        value = float("nan")
        for index, rung in enumerate(rungs):
            value = x + 1000.0 / rung
            trial.report(value, step=rung)
            if index < len(rungs) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


def test_the_flagship_studys_rungs_each_prune_something():
    config = load_study_config(FLAGSHIP)
    pruner = study_pruner(config)
    assert isinstance(pruner, RungPruner)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
    study.optimize(_fake_objective(config.fidelity.rungs), n_trials=60)
    pruned_at = [t.last_step for t in study.trials if t.state == TrialState.PRUNED]
    lower_rungs = config.fidelity.rungs[:-1]
    assert lower_rungs == (5000, 10000)
    for rung in lower_rungs:
        assert pruned_at.count(rung) >= 5, (rung, pruned_at)
    assert set(pruned_at) <= set(lower_rungs)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert 0 < len(complete) < 60 - 10


def test_a_trial_goes_on_only_among_the_best_share_of_its_rung():
    study = optuna.create_study(pruner=RungPruner((10, 20), reduction_factor=3))
    kept = []
    for x in [5.0, 4.0, 6.0, 1.0, 3.0, 2.0]:
        trial = study.ask()
        trial.report(x, step=10)
        kept.append(not trial.should_prune())
        if kept[-1]:
            study.tell(trial, x)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    # m competitors: the best max(1, m // 3) go on
    assert kept == [True, True, False, True, False, True]


def test_a_value_that_is_not_a_number_ranks_last():
    study = optuna.create_study(pruner=RungPruner((10, 20), reduction_factor=2))
    broken = study.ask()
    broken.report(float("nan"), step=10)
    assert broken.should_prune()
    study.tell(broken, state=TrialState.PRUNED)
    trial = study.ask()
    trial.report(50.0, step=10)
    assert not trial.should_prune()  # best of 2 (the NaN counts as the worst)


def test_the_storage_read_of_a_rung_decides_as_the_trials_would(storage_url):
    from autonat_search.storage import open_storage, rung_values

    storage = open_storage(storage_url)
    reads: list[int] = []

    def read(study: optuna.Study, step: int) -> list[tuple[int, float]]:
        reads.append(step)
        return rung_values(storage, study, step)

    decisions = {}
    for name, pruner in [
        ("trials", RungPruner((10, 20, 40), reduction_factor=2)),
        ("storage", RungPruner((10, 20, 40), reduction_factor=2, rung_values=read)),
    ]:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=optuna.samplers.RandomSampler(seed=1),
            pruner=pruner,
        )
        study.optimize(_fake_objective((10, 20, 40)), n_trials=16)
        decisions[name] = [(t.state, t.last_step) for t in study.trials]
        assert bool(reads) == (name == "storage")
    assert decisions["storage"] == decisions["trials"]
    assert (TrialState.PRUNED, 20) in decisions["trials"]


def test_the_top_rung_never_prunes():
    study = optuna.create_study(pruner=RungPruner((10, 20), reduction_factor=2))
    for x in (1.0, 9.0):
        trial = study.ask()
        trial.report(x, step=20)
        assert not trial.should_prune()


BASE = {
    "name": "t",
    "bundle": "b.yaml",
    "steps": 8,
    "budget": {"n_trials": 10},
    "samples": {"chunk": 125},
}


def test_a_study_file_with_a_rung_the_pruner_skips_is_refused(tmp_path):
    data = {
        **BASE,
        "fidelity": {
            "rungs": [5000, 10000, 50000],
            "pruner": "optuna-successive-halving",
            "reduction_factor": 3,
        },
    }
    path = tmp_path / "skips.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_study_config(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "fidelity.rungs[1] = 10000 would never decide" in message
    assert "decides at 5000, 15000, 45000" in message


def test_optunas_halving_on_its_own_rungs_and_every_other_pruner_are_accepted():
    aligned = {"rungs": [5000, 15000, 45000], "pruner": "optuna-successive-halving"}
    assert parse_study_config({**BASE, "fidelity": aligned}).fidelity.rungs[1] == 15000
    for pruner in ("successive-halving", "median", "none"):
        fidelity = {"rungs": [5000, 10000, 50000], "pruner": pruner}
        assert parse_study_config({**BASE, "fidelity": fidelity}).fidelity.pruner == pruner
