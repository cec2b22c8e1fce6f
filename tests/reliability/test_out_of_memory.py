"""Out of memory: the batch is halved (whole chunks) and the result does not change."""

import sys

import pytest
import torch

from autonat_search.errors import TrialFailure
from autonat_search.execution.evaluation import BatchSizer, SamplePlan, evaluate_chunks
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

STRATEGY = GenerationStrategy.reference_initial(4)
PLAN = SamplePlan(seed=5, chunk=20, batch_size=80)


@pytest.fixture(scope="module")
def bundle(quick_digits_bundle):
    return load_bundle(quick_digits_bundle)


def _memory_of(bundle, monkeypatch, fits: int):
    """Batches larger than ``fits`` samples raise torch.OutOfMemoryError; sizes seen."""
    real = bundle.sample_features
    seen = []

    def limited(strategy, labels, generators, **kwargs):
        seen.append(len(labels))
        if len(labels) > fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated at {len(labels)})")
        return real(strategy, labels, generators, **kwargs)

    monkeypatch.setattr(bundle, "sample_features", limited)
    return seen


def test_the_batch_is_halved_and_the_fid_is_unchanged(bundle, monkeypatch):
    chunks = PLAN.chunks_between(0, 160)
    full = bundle.fid(evaluate_chunks(bundle, STRATEGY, chunks, PLAN))
    seen = _memory_of(bundle, monkeypatch, fits=40)
    sizer = BatchSizer()
    halved = bundle.fid(evaluate_chunks(bundle, STRATEGY, chunks, PLAN, sizer=sizer))
    assert seen[:3] == [80, 40, 40]  # one failure, then half the batch from there on
    assert set(seen[1:]) == {40}
    assert sizer.chunks_per_batch(PLAN) == 2  # kept for the actor's next evaluations
    assert halved == pytest.approx(full, rel=1e-9, abs=1e-9)


def test_only_a_chunk_that_does_not_fit_fails_the_trial(bundle, monkeypatch):
    _memory_of(bundle, monkeypatch, fits=10)
    with pytest.raises(TrialFailure, match="single chunk of 20 samples"):
        evaluate_chunks(bundle, STRATEGY, PLAN.chunks_between(0, 80), PLAN, sizer=BatchSizer())


class _TightMemoryActor:
    """A real ``BundleActor`` whose device holds at most ``fits`` samples per batch."""

    def __init__(self, bundle: str, fits: int) -> None:
        from autonat_search.execution.actors import BundleActor

        self.actor = BundleActor(bundle, "cpu", threads=1)
        self.seen: list[int] = []
        real = self.actor.bundle.sample_features

        def limited(strategy, labels, generators, **kwargs):
            self.seen.append(len(labels))
            if len(labels) > fits:
                raise torch.OutOfMemoryError(f"CUDA out of memory (simulated at {len(labels)})")
            return real(strategy, labels, generators, **kwargs)

        self.actor.bundle.sample_features = limited

    def evaluate(self, strategy, chunks, plan):
        return self.actor.evaluate(strategy, chunks, plan)

    def batches(self) -> list[int]:
        return self.seen


def test_an_actor_out_of_memory_halves_its_batch_and_lives_on(
    ray_session, bundle, quick_digits_bundle
):
    import ray
    from ray import cloudpickle

    from autonat_search.execution.actors import evaluate_on_actors

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers can't import it

    full = bundle.fid(evaluate_chunks(bundle, STRATEGY, PLAN.chunks_between(0, 160), PLAN))
    tight = ray.remote(_TightMemoryActor).remote(str(quick_digits_bundle), 40)
    halved = bundle.fid(evaluate_on_actors([tight], STRATEGY, 160, PLAN))
    assert halved == pytest.approx(full, rel=1e-9, abs=1e-9)
    again = bundle.fid(evaluate_on_actors([tight], STRATEGY, 160, PLAN))  # the same actor
    assert again == halved
    seen = ray.get(tight.batches.remote())
    assert seen[:2] == [80, 40] and set(seen[1:]) == {40}  # halved once, kept since

    too_small = ray.remote(_TightMemoryActor).remote(str(quick_digits_bundle), 10)
    with pytest.raises(TrialFailure, match="single chunk of 20 samples"):
        evaluate_on_actors([too_small], STRATEGY, 80, PLAN)
    assert ray.get(too_small.batches.remote())[-1] == 20  # alive after the failure
