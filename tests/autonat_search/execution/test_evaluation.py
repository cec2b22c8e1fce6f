"""Common random numbers: an evaluation's FID depends on the samples' seed, nothing else."""

import pytest
import torch

from autonat_search.execution.actors import evaluate_on_actors, local_actors
from autonat_search.execution.evaluation import SamplePlan, evaluate_chunks, split_evenly
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

N = 120
STRATEGY = GenerationStrategy(
    mask_ratios=[0.7, 0.4, 0.1],
    remask_temps=[1.5, 1.0, 0.5],
    sample_temps=[1.2, 1.0, 1.0, 0.9],
    cfg_scales=[0.0, 0.5, 1.0, 1.5],
)


@pytest.fixture(scope="module")
def bundle(quick_digits_bundle):
    return load_bundle(quick_digits_bundle)


def _fid(bundle, plan, chunks=None):
    chunks = plan.chunks_between(0, N) if chunks is None else chunks
    return bundle.fid(evaluate_chunks(bundle, STRATEGY, chunks, plan))


def test_same_seed_same_fid_whatever_the_batch_size(bundle):
    plan = SamplePlan(seed=3, chunk=20, batch_size=40)
    first = _fid(bundle, plan)
    assert _fid(bundle, plan) == first
    for batch_size in (20, 60, 120):
        other = SamplePlan(seed=3, chunk=20, batch_size=batch_size)
        assert _fid(bundle, other) == pytest.approx(first, rel=1e-9, abs=1e-9)


def test_a_different_seed_gives_a_different_fid(bundle):
    a = _fid(bundle, SamplePlan(seed=3, chunk=20, batch_size=40))
    b = _fid(bundle, SamplePlan(seed=4, chunk=20, batch_size=40))
    assert a != pytest.approx(b, rel=1e-6)


def test_shares_merge_to_the_same_statistics(bundle):
    plan = SamplePlan(seed=3, chunk=20, batch_size=40)
    chunks = list(plan.chunks_between(0, N))
    parts = [evaluate_chunks(bundle, STRATEGY, share, plan) for share in split_evenly(chunks, 4)]
    merged = sum(parts[1:], start=parts[0])
    assert merged.count == N
    assert bundle.fid(merged) == pytest.approx(_fid(bundle, plan), rel=1e-9, abs=1e-9)


def test_split_over_two_ray_actors_gives_the_same_fid(ray_session, bundle, quick_digits_bundle):
    plan = SamplePlan(seed=3, chunk=20, batch_size=40)
    with local_actors(
        quick_digits_bundle, device_kind="cpu", cpu_actors=2, actor_cpus=0.5
    ) as actors:
        stats = evaluate_on_actors(actors, STRATEGY, N, plan)
    assert stats.count == N
    assert bundle.fid(stats) == pytest.approx(_fid(bundle, plan), rel=1e-9, abs=1e-9)


def test_balanced_labels_cover_the_classes_and_uniform_labels_are_seeded():
    balanced = SamplePlan(seed=0, chunk=20, batch_size=20)
    labels = torch.cat([balanced.chunk_labels(i, 10) for i in range(3)])
    assert torch.equal(labels, torch.arange(60) % 10)
    uniform = SamplePlan(seed=0, chunk=20, batch_size=20, labels="uniform")
    assert torch.equal(uniform.chunk_labels(1, 10), uniform.chunk_labels(1, 10))
    assert not torch.equal(uniform.chunk_labels(1, 10), uniform.chunk_labels(2, 10))


def test_plan_rejects_counts_off_the_chunk_grid():
    with pytest.raises(ValueError, match="batch_size 30 must be a positive multiple of chunk 20"):
        SamplePlan(seed=0, chunk=20, batch_size=30)
    with pytest.raises(ValueError, match="precision must be one of .*got 'int8'"):
        SamplePlan(seed=0, chunk=20, batch_size=40, precision="int8")
    with pytest.raises(ValueError, match="sample count 50 is not a multiple of chunk 20"):
        SamplePlan(seed=0, chunk=20, batch_size=40).chunks_between(0, 50)
