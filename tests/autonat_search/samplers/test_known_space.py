"""TPE told the study's space proposes exactly what TPE inferring it proposes."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState

from autonat_search.config import DEFAULT_RANGES, SamplerConfig, SpaceConfig
from autonat_search.samplers import KnownSpaceTPESampler, TrialSeededSampler, build_sampler
from autonat_search.space import build_space, space_distributions
from nat_core.strategy import GenerationStrategy

STEPS = 4


class _CountingStorage(InMemoryStorage):
    """Counts the reads of the study's trials (those of only WAITING ones left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_all_trials(self, study_id, deepcopy=True, states=None):  # type: ignore[no-untyped-def]
        if states is None or TrialState.COMPLETE in states:
            self.reads += 1
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


def _run(
    search_space, space_kind: str, storage: InMemoryStorage | None = None
) -> list[optuna.trial.FrozenTrial]:
    """A study of rounds of 3 concurrent trials (constant liar sees the running ones), a warm
    start first, some trials pruned."""
    space = build_space(SpaceConfig(kind=space_kind, ranges=dict(DEFAULT_RANGES)), steps=STEPS)
    sampler = TrialSeededSampler(
        lambda seed: build_sampler(SamplerConfig(name="tpe"), seed=seed, search_space=search_space),
        seed=7,
    )
    study = optuna.create_study(sampler=sampler, storage=storage)
    warm, _ = space.params_for(GenerationStrategy.reference_initial(STEPS))
    study.enqueue_trial(warm)
    for _ in range(9):
        trials = [study.ask() for _ in range(3)]
        vectors = [space.suggest(trial).to_vector() for trial in trials]
        for trial, vector in zip(trials, vectors, strict=True):
            value = sum((v - 0.3) ** 2 for v in vector)
            if trial.number % 4 == 3:
                trial.report(value, step=1)
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, value)
    return study.trials


@pytest.mark.parametrize("space_kind", ["centered", "per-step"])
def test_tpe_told_the_space_proposes_the_trials_tpe_inferring_it_proposes(space_kind):
    known = space_distributions(
        build_space(SpaceConfig(kind=space_kind, ranges=dict(DEFAULT_RANGES)), steps=STEPS)
    )
    told, inferred = _run(known, space_kind), _run(None, space_kind)
    assert len(told) == 27
    assert [(t.state, t.params) for t in told] == [(t.state, t.params) for t in inferred]
    # past its start-up trials TPE sampled relatively (what the known space changes), both ways
    relative = [any(k.startswith("tpe:relative_params") for k in t.system_attrs) for t in told]
    assert not any(relative[:12]) and all(relative[12:])


def test_tpe_told_the_space_reads_the_trials_once_per_ask_where_tpe_reads_them_twice():
    known = space_distributions(
        build_space(SpaceConfig(kind="centered", ranges=dict(DEFAULT_RANGES)), steps=STEPS)
    )
    reads = {}
    for name, search_space in (("told", known), ("inferred", None)):
        storage = _CountingStorage()
        _run(search_space, "centered", storage)
        reads[name] = storage.reads
    # past its 10 start-up trials TPE sampled 15 trials relatively (12 were asked by then);
    # for each it read the trials through the study's cache and again, bypassing it, for its
    # constant liar: told the space, the second read goes to the cache too
    assert reads["inferred"] - reads["told"] == 15


def test_the_known_space_is_sorted_and_leaves_out_single_values():
    sampler = KnownSpaceTPESampler(
        {
            "b": FloatDistribution(0, 1),
            "fixed": FloatDistribution(2, 2),
            "a": FloatDistribution(0, 3),
        },
        seed=0,
    )
    assert list(sampler.infer_relative_search_space(None, None)) == ["a", "b"]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group=True"):
        KnownSpaceTPESampler({}, group=True)
