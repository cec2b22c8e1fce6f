"""The finite-difference sampler against SPEC 7's formulas, written out here in plain numpy."""

import logging
import threading

import numpy as np
import optuna
import pytest
import torch
from fd_oracle import WIDE, quadratic, spec_search
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.config import DEFAULT_RANGES, parse_study_config
from autonat_search.execution.trial_loop import _reserve, run_trial_loop
from autonat_search.samplers.finite_difference import (
    COORDINATE_ATTR,
    UPDATE_ATTR,
    FiniteDifferenceSampler,
    study_notes,
    trial_rungs,
)
from autonat_search.samplers.finite_difference_rule import (
    FiniteDifferenceSettings,
    reference_rule,
)
from autonat_search.spaces.raw import RawStepSpace
from autonat_search.storage import StudyLock, open_storage
from nat_core.strategy import GenerationStrategy

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_sampler(steps, n_trials, f, *, ranges=WIDE, grad_clip=None, objective=None):
    space = RawStepSpace(steps=steps, ranges=ranges)
    sampler = FiniteDifferenceSampler(space, FiniteDifferenceSettings(grad_clip=grad_clip))
    study = optuna.create_study(sampler=sampler)

    def evaluate(trial):
        return f(space.suggest(trial).to_vector())

    study.optimize(objective or evaluate, n_trials=n_trials, catch=(Exception,))
    return study, sampler


def vector(trial, steps):
    return np.array([trial.params[n] for n in RawStepSpace(steps, WIDE).names])


@pytest.mark.parametrize("grad_clip", [None, 3.0])
def test_points_and_updates_follow_the_formulas_step_by_step(grad_clip):
    steps, updates = 3, 4
    f = quadratic(steps)
    size = 4 * steps - 2
    points, iterates = spec_search(f, steps, updates, grad_clip)
    study, sampler = run_sampler(steps, updates * (size + 1), f, grad_clip=grad_clip)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * len(points)
    for n, (trial, expected) in enumerate(zip(trials, points, strict=True)):
        assert trial.user_attrs[UPDATE_ATTR] == n // (size + 1)
        assert trial.user_attrs[COORDINATE_ATTR] == n % (size + 1) - 1
        np.testing.assert_array_equal(vector(trial, steps), expected)
    progress = sampler.progress(study)
    assert progress.update == updates and progress.pending[0] == -1
    for got, expected in zip(progress.iterates, iterates, strict=True):
        np.testing.assert_array_equal(got, expected)
    moved = np.abs(iterates[-1] - iterates[0])
    assert moved[: steps - 1].max() > 1e-3 and moved[steps - 1 :].min() > 0  # it really moved


def test_gradient_clipping_is_element_wise():
    steps = 2
    f = quadratic(steps, seed=3)
    rule = reference_rule(steps, WIDE, FiniteDifferenceSettings(grad_clip=1.0))
    free = reference_rule(steps, WIDE)
    x = rule.start
    fids = [f(free.probe(x, i)) for i in range(free.size)]
    raw = free.gradient(x, f(x), fids)
    clipped = rule.gradient(x, f(x), fids)
    big = np.abs(raw) > 1.0
    assert big.any() and (~big).any()
    np.testing.assert_array_equal(clipped[big], 1.0 * np.sign(raw[big]))
    np.testing.assert_array_equal(clipped[~big], raw[~big])
    x1, _ = rule.update(x, None, f(x), fids)
    np.testing.assert_array_equal(x1, np.clip(x - rule.lr * clipped, rule.lower, rule.upper))


def test_the_update_is_pytorch_sgd_with_momentum():
    """Three updates of the rule against torch.optim.SGD(momentum=0.5) on the same gradients."""
    steps = 3
    f = quadratic(steps, seed=1)
    rule = reference_rule(steps, WIDE)
    n_ratios = steps - 1
    ratios = torch.nn.Parameter(torch.tensor(rule.start[:n_ratios]))
    rest = torch.nn.Parameter(torch.tensor(rule.start[n_ratios:]))
    sgd = torch.optim.SGD(
        [{"params": ratios, "lr": 1e-3}, {"params": rest, "lr": 0.1}], momentum=0.5
    )
    x, buf = rule.start, None
    for _ in range(3):
        fids = [f(rule.probe(x, i)) for i in range(rule.size)]
        grad = rule.gradient(x, f(x), fids)
        ratios.grad, rest.grad = torch.tensor(grad[:n_ratios]), torch.tensor(grad[n_ratios:])
        sgd.step()
        with torch.no_grad():
            ratios.clamp_(0, 0.99)
            rest.clamp_(min=1e-4)
        x, buf = rule.update(x, buf, f(x), fids)
        expected = torch.cat([ratios, rest]).detach().numpy()
        np.testing.assert_allclose(x, expected, rtol=1e-14, atol=1e-16)


def test_bounds_probes_and_the_actual_step():
    steps = 3
    ranges = {**WIDE, "cfg": (0.0, 1.05)}
    rule = reference_rule(steps, ranges)
    x = rule.start.copy()
    x[0], x[2], x[-2], x[-1] = 0.99, 1e-4, 1.0, 1.05  # at the ceilings and the floor
    assert rule.probe(x, 0)[0] == 1.0  # ratios probe up to 1, as the reference
    assert rule.probe(x, 2)[2] == 1e-4 + 0.1
    assert rule.probe(x, rule.size - 2)[-2] == 1.05  # 1.0 + 0.1, clipped to the range
    backwards = rule.probe(x, rule.size - 1)  # no room above: one step down instead
    assert backwards[-1] == 1.05 - 0.1 and np.array_equal(backwards[:-1], x[:-1])
    fids = np.zeros(rule.size)
    fids[-2:] = 1.0  # FID rises by 1 on both probes
    grad = rule.gradient(x, 0.0, fids)
    assert grad[-2] == 1.0 / (1.05 - 1.0)  # divided by the actual step 0.05, not h = 0.1
    assert grad[-1] == 1.0 / ((1.05 - 0.1) - 1.05)  # negative: FID rises going down
    moves = np.array([rule.probe(x, i)[i] - x[i] for i in range(rule.size)])
    down, _ = rule.update(x, None, 0.0, moves * 1e6)  # gradient 1e6: every number pushed down
    np.testing.assert_array_equal(down, np.r_[[0.0] * (steps - 1), [1e-4] * (3 * steps - 1)])
    up, _ = rule.update(x, None, 0.0, moves * -1e6)  # and up
    np.testing.assert_array_equal(up[: steps - 1], 0.99)
    np.testing.assert_array_equal(up[steps - 1 : -steps], 50.0)
    np.testing.assert_array_equal(up[-steps:], 1.05)


def test_a_failed_or_pruned_evaluation_is_run_again():
    steps = 2
    f = quadratic(steps, seed=2)
    size = 4 * steps - 2
    space = RawStepSpace(steps=steps, ranges=WIDE)
    spoiled: set[tuple[int, int]] = set()

    def flaky(trial):
        value = f(space.suggest(trial).to_vector())
        tag = (trial.user_attrs[UPDATE_ATTR], trial.user_attrs[COORDINATE_ATTR])
        if tag in {(0, 3), (1, -1), (1, 4)} and tag not in spoiled:
            spoiled.add(tag)
            if tag[1] == 4:
                raise optuna.TrialPruned()
            raise RuntimeError("out of memory (simulated)")
        return value

    study, sampler = run_sampler(steps, 2 * (size + 1) + 3, f, objective=flaky)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 2 and states.count(TrialState.PRUNED) == 1
    for tag in spoiled:
        again = [
            t
            for t in study.trials
            if (t.user_attrs[UPDATE_ATTR], t.user_attrs[COORDINATE_ATTR]) == tag
        ]
        assert [t.state for t in again][-1] == TrialState.COMPLETE and len(again) == 2
        np.testing.assert_array_equal(vector(again[0], steps), vector(again[1], steps))
    _, iterates = spec_search(f, steps, 2)
    np.testing.assert_array_equal(sampler.progress(study).point, iterates[2])


def test_nothing_is_handed_out_twice_while_every_evaluation_runs(caplog):
    steps = 2
    size = 4 * steps - 2
    space = RawStepSpace(steps=steps, ranges=WIDE)
    sampler = FiniteDifferenceSampler(space)
    study = optuna.create_study(sampler=sampler)
    running = []
    for _ in range(size + 1):
        assert sampler.has_work(study)
        trial = study.ask()
        space.suggest(trial)
        running.append(trial)
    assert [t.user_attrs[COORDINATE_ATTR] for t in running] == list(range(-1, size))
    assert not sampler.has_work(study)
    with caplog.at_level(logging.WARNING):
        extra = study.ask()  # without the trial loop's check: a duplicate, and said so
    assert "repeats coordinate -1" in caplog.text
    study.tell(extra, state=TrialState.FAIL)
    study.tell(running[3], state=TrialState.FAIL)
    assert sampler.has_work(study) and sampler.progress(study).pending == [2]
    again = study.ask()
    assert again.user_attrs[COORDINATE_ATTR] == 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_the_trial_loop_waits_instead_of_starting_a_duplicate(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    space = RawStepSpace(steps=2, ranges=WIDE)
    sampler = FiniteDifferenceSampler(space)
    study = optuna.create_study(study_name="fd", storage=storage, sampler=sampler)
    records.write_budget(study, 100)
    for _ in range(space.steps * 4 - 1):
        assert _reserve(study, storage)[0] == "run"
        storage.record_heartbeat(study.ask()._trial_id)
    assert _reserve(study, storage)[0] == "wait"
    assert len(study.trials) == 7


def test_warm_starts_the_reference_initial_schedule_is_the_first_centre():
    steps = 3
    f = quadratic(steps, seed=4)
    space = RawStepSpace(steps=steps, ranges=WIDE)
    sampler = FiniteDifferenceSampler(space)
    study = optuna.create_study(sampler=sampler)
    other = GenerationStrategy([0.8, 0.3], [2, 1], [1, 1, 2], [0, 1, 3])
    for strategy in (GenerationStrategy.reference_initial(steps), other):
        study.enqueue_trial(space.params_for(strategy)[0])
    study.optimize(lambda t: f(space.suggest(t).to_vector()), n_trials=4 * steps - 1 + 1)
    first, second, *rest = study.trials
    assert (first.user_attrs[UPDATE_ATTR], first.user_attrs[COORDINATE_ATTR]) == (0, -1)
    assert UPDATE_ATTR not in second.user_attrs  # evaluated beside the search
    assert [t.user_attrs[COORDINATE_ATTR] for t in rest] == list(range(4 * steps - 2))
    _, iterates = spec_search(f, steps, 1)
    np.testing.assert_array_equal(sampler.progress(study).point, iterates[1])


def test_only_the_top_rung_and_a_note_for_the_finite_difference_search():
    base = {
        "name": "t",
        "bundle": "b.yaml",
        "steps": 4,
        "budget": {"n_trials": 9},
        "fidelity": {"rungs": [100, 200, 400]},
        "samples": {"chunk": 50},
    }
    fd = parse_study_config(
        {**base, "sampler": {"name": "finite-difference"}, "space": {"kind": "raw"}}
    )
    tpe = parse_study_config(base)
    assert trial_rungs(fd) == (400,) and trial_rungs(tpe) == (100, 200, 400)
    assert "400 samples with no pruning" in study_notes(fd)[0] and study_notes(tpe) == []
    assert FiniteDifferenceSampler.for_study(fd).rule.grad_clip is None


def test_a_start_outside_the_ranges_is_refused():
    with pytest.raises(
        ValueError, match=r"cfg \[0.0, 0.5\] excludes the finite-difference start cfg_2 = 0.666"
    ):
        reference_rule(3, {**DEFAULT_RANGES, "cfg": (0.0, 0.5)})


def test_two_threads_share_one_study_through_the_trial_loop(tmp_path):
    """The embedded store and two threads; the PostgreSQL test runs real processes."""
    steps, updates = 2, 2
    f = quadratic(steps, seed=5)
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = RawStepSpace(steps=steps, ranges=WIDE)
    records.write_budget(
        optuna.create_study(study_name="fd", storage=open_storage(url)),
        updates * (4 * steps - 1) + 1,
    )

    def worker():
        storage = open_storage(url)
        study = optuna.load_study(
            study_name="fd", storage=storage, sampler=FiniteDifferenceSampler(space)
        )
        run_trial_loop(
            study,
            lambda t: f(space.suggest(t).to_vector()),
            StudyLock(url, "fd"),
            storage=storage,
            stop=threading.Event(),
            poll_seconds=0.02,
        )

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = optuna.load_study(study_name="fd", storage=open_storage(url)).trials
    tags = [(t.user_attrs[UPDATE_ATTR], t.user_attrs[COORDINATE_ATTR]) for t in trials]
    assert sorted(tags) == [(k, c) for k in range(updates) for c in range(-1, 4 * steps - 2)] + [
        (updates, -1)
    ]
    _, iterates = spec_search(f, steps, updates)
    centre = next(t for t in trials if t.user_attrs[UPDATE_ATTR] == updates)
    np.testing.assert_array_equal(vector(centre, steps), iterates[-1])
