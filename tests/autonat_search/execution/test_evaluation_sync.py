"""No host synchronisation inside an evaluation: the host queues a whole evaluation's work
without waiting for the device (checked with ``torch.cuda.set_sync_debug_mode('error')``,
which raises on any synchronising call: ``.item()``, a pageable host copy, ...)."""

import pytest
import torch

from autonat_search.execution.evaluation import SamplePlan, evaluate_chunks
from nat_core.pipeline import load_bundle
from nat_core.speed import SpeedOptions
from nat_core.strategy import GenerationStrategy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs CUDA: torch.cuda.set_sync_debug_mode sees host synchronisations with a "
        "CUDA device only",
    ),
]

STRATEGY = GenerationStrategy(
    mask_ratios=[0.7, 0.4, 0.1],
    remask_temps=[1.5, 1.0, 0.5],
    sample_temps=[1.2, 1.0, 1.0, 0.9],
    cfg_scales=[0.0, 0.5, 1.0, 1.5],
)


def _no_sync_evaluation(bundle, plan):
    chunks = plan.chunks_between(0, 16)
    # Warm-up: CUDA context, library handles, allocator, compiled kernels.
    evaluate_chunks(bundle, STRATEGY, chunks, plan)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError):  # the mode catches a synchronisation
            float(torch.ones(1, device=bundle.device).sum())
        stats = evaluate_chunks(bundle, STRATEGY, chunks, plan)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert stats.count == 16
    assert stats.device.type == "cuda"


@pytest.mark.parametrize("bundle_fixture", ["quick_digits_bundle", "tiny_bundle_path"])
def test_evaluate_chunks_does_not_synchronise(bundle_fixture, request):
    path = request.getfixturevalue(bundle_fixture)
    bundle = load_bundle(path, device="cuda")
    _no_sync_evaluation(bundle, SamplePlan(seed=0, chunk=4, batch_size=8))


def test_evaluate_chunks_does_not_synchronise_with_the_gpu_speed_options(tiny_bundle_path):
    bundle = load_bundle(tiny_bundle_path, device="cuda", speed=SpeedOptions.fastest("cuda"))
    _no_sync_evaluation(bundle, SamplePlan(seed=0, chunk=4, batch_size=8, precision="bf16"))
