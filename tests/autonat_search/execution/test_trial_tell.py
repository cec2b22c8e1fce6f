"""``tell_running`` records what Optuna's ``Study.tell`` records, reading the trial once."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from autonat_search.execution.trial_tell import tell_running


class _CountingStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.trial_reads = 0

    def get_trial(self, trial_id: int) -> FrozenTrial:
        self.trial_reads += 1
        return super().get_trial(trial_id)


class _RecordingSampler(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=3)
        self.after: list[tuple[int, TrialState, Any, dict[int, float]]] = []

    def after_trial(self, study, trial, state, values) -> None:  # type: ignore[no-untyped-def]
        self.after.append((trial.number, state, values, dict(trial.intermediate_values)))


def _twin(reports: list[float]) -> tuple[optuna.Study, optuna.Trial, _CountingStorage]:
    storage = _CountingStorage()
    study = optuna.create_study(storage=storage, sampler=_RecordingSampler())
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("fid_at_100", 1.5)
    for step, value in enumerate(reports):
        trial.report(value, step=100 * (step + 1))
    return study, trial, storage


def _stored(study: optuna.Study) -> tuple[Any, ...]:
    [trial] = study.get_trials()
    return trial.state, trial.values, trial.params, trial.user_attrs, trial.intermediate_values


@pytest.mark.parametrize(
    ("state", "value", "reports"),
    [
        (TrialState.COMPLETE, 7.25, [9.0]),
        (TrialState.COMPLETE, math.inf, []),
        (TrialState.PRUNED, None, [9.0, 8.5]),  # its value: the last report
        (TrialState.PRUNED, None, []),  # no report: no value
        (TrialState.PRUNED, None, [float("nan")]),  # a NaN report: no value
        (TrialState.FAIL, None, [9.0]),
    ],
)
def test_it_records_what_study_tell_records_with_one_read(state, value, reports):
    ours, our_trial, our_storage = _twin(reports)
    optunas, optunas_trial, optunas_storage = _twin(reports)
    our_storage.trial_reads = optunas_storage.trial_reads = 0

    told = tell_running(ours, our_trial._trial_id, state, value)
    expected = optunas.tell(optunas_trial, value, state=state)

    assert _stored(ours) == _stored(optunas)
    assert ours.sampler.after == optunas.sampler.after  # type: ignore[attr-defined]
    assert told is not None
    assert (told.number, told.state, told.values) == (
        expected.number,
        expected.state,
        expected.values,
    )
    assert told.datetime_complete is not None
    assert (our_storage.trial_reads, optunas_storage.trial_reads) == (1, 2)


def test_a_trial_no_longer_running_is_not_told():
    study, trial, _ = _twin([9.0])
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)

    assert tell_running(study, trial._trial_id, TrialState.COMPLETE, 1.0) is None
    assert _stored(study)[:2] == (TrialState.FAIL, None)
    assert study.sampler.after == []  # type: ignore[attr-defined]


def test_a_nan_value_is_refused_and_the_trial_stays_running():
    study, trial, _ = _twin([9.0])
    with pytest.raises(ValueError, match="nan is not acceptable"):
        tell_running(study, trial._trial_id, TrialState.COMPLETE, float("nan"))
    assert _stored(study)[0] == TrialState.RUNNING


@pytest.mark.parametrize(
    ("state", "value"),
    [(TrialState.RUNNING, None), (TrialState.PRUNED, 1.0), (TrialState.COMPLETE, None)],
)
def test_a_state_and_value_that_do_not_fit_are_refused(state, value):
    study, trial, _ = _twin([])
    with pytest.raises(ValueError, match=state.name):
        tell_running(study, trial._trial_id, state, value)
    assert _stored(study)[0] == TrialState.RUNNING


def test_the_state_is_recorded_even_when_the_samplers_after_trial_raises():
    study, trial, _ = _twin([9.0])

    def broken(*_: Any) -> None:
        raise RuntimeError("sampler bug")

    study.sampler.after_trial = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="sampler bug"):
        tell_running(study, trial._trial_id, TrialState.COMPLETE, 2.0)
    assert _stored(study)[:2] == (TrialState.COMPLETE, [2.0])
