"""The benchmark scripts work: gpu_check.py end to end at tiny sizes on the CPU (its GPU run
is a one-shot affair), and the reference-style loop that both sampler benchmarks compare
against reproduces the reference's tokens."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.sampler import generate_tokens
from nat_core.strategy import GenerationStrategy

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO_ROOT / "benchmarks"
RATE = r"(\d+\.\d+) images/s"


def _run_benchmark(script: str, *args: str) -> str:
    """The script's stdout; it must succeed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def smoke_output() -> str:
    return _run_benchmark("gpu_check.py", "--smoke")


def _line(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{output}"
    return lines[0]


@pytest.mark.parametrize(
    "stage",
    [
        "stage loop eager bf16:",
        "stage loop reference-style fp16 (two passes, host noise, sort):",
        "stage loop compiled bf16 (torch.compile, backend eager):",
        "stage loop compiled bf16, first three guidance scales 0:",
        "stage VQGAN decode eager bf16, micro-batch 1:",
        "stage VQGAN decode eager bf16, micro-batch 2:",
        "stage VQGAN decode channels-last + compiled bf16, micro-batch 1:",
        "stage Inception fp32, micro-batch 1:",
        "stage whole pipeline",
    ],
)
def test_gpu_check_smoke_reports_every_stage(smoke_output, stage):
    line = _line(smoke_output, stage)
    assert float(re.search(RATE, line).group(1)) > 0
    assert "peak memory n/a (CPU)" in line


def test_gpu_check_smoke_reports_the_summary(smoke_output):
    assert "smoke True" in _line(smoke_output, "device: CPU")
    assert "features: pytorch-fid FID InceptionV3" in smoke_output
    assert _line(smoke_output, "attention: sdpa")
    assert re.search(r"compile: NAT \d+\.\d s over 2 input shapes", smoke_output)
    assert re.search(r"compile: VQGAN decoder \d+\.\d s over 1 input shapes", smoke_output)
    # The eager backend runs the same kernels: the compiled loop gives the eager tokens.
    assert "100.00% of tokens equal, 100.0% of sequences identical" in smoke_output
    for key in ("eager", "compiled", "zeros"):
        assert re.search(rf"loop speed-up vs reference-style: {key} \d+\.\d\dx", smoke_output)
    assert re.search(r"pipeline: \d+\.\d images/s = .*goal >= 250 images/s not met", smoke_output)
    assert re.search(r"projected FID-50k: \d+\.\d s = 50,000 images", smoke_output)
    assert "FAILED" not in smoke_output and "skipped" not in smoke_output
    assert _line(smoke_output, "total wall:")


def test_torchvision_fallback_gives_inception_features(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    features, description = gpu_check.build_features("torchvision", torch.device("cpu"))
    assert "TIMING ONLY" in description
    with torch.inference_mode():
        out = features(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 2048)


@pytest.fixture(scope="module")
def parity(reference_dir):
    data = torch.load(reference_dir / "nat_parity.pt", weights_only=True)
    model = NATransformer(**data["config"]).eval()
    load_nat_checkpoint(model, data["state_dict"])
    return data, model


def test_reference_style_loop_reproduces_the_reference_tokens(parity, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from reference_loop import reference_style_tokens

    data, model = parity
    strategy = GenerationStrategy.from_reference_dict(data["strategy"])
    for seed in (0, 5):
        tokens = reference_style_tokens(
            model,
            strategy,
            data["labels"][:, 0],
            seq_len=256,
            mask_id=32,
            null_label=10,
            generator=torch.Generator().manual_seed(seed),
            host_rng=np.random.default_rng(seed),
        )
        assert torch.equal(tokens, data["generated_tokens"])
    # Half precision as on a GPU: it runs and gives valid tokens.
    tokens = reference_style_tokens(
        model,
        strategy,
        data["labels"][:, 0],
        seq_len=256,
        mask_id=32,
        null_label=10,
        generator=torch.Generator().manual_seed(0),
        host_rng=np.random.default_rng(0),
        autocast_dtype=torch.bfloat16,
    )
    assert tokens.shape == (2, 256) and int(tokens.max()) < 32


def test_reference_style_loop_matches_ours_when_decoding_is_deterministic(parity, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from reference_loop import reference_style_tokens

    data, model = parity
    strategy = GenerationStrategy(
        mask_ratios=[0.8, 0.5, 0.2],
        remask_temps=[0.0, 0.0, 0.0],
        sample_temps=[1e-4] * 4,
        cfg_scales=[0.0, 0.5, 1.0, 3.0],
    )
    labels = torch.tensor([4, 7, 10])
    double = NATransformer(**data["config"]).eval().double()
    double.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours = generate_tokens(
            double,
            strategy,
            labels,
            seq_len=256,
            mask_id=32,
            null_label=10,
            generator=torch.Generator().manual_seed(1),
        )
    theirs = reference_style_tokens(
        double,
        strategy,
        labels,
        seq_len=256,
        mask_id=32,
        null_label=10,
        generator=torch.Generator().manual_seed(2),
        host_rng=np.random.default_rng(2),
    )
    assert torch.equal(ours, theirs)


def test_artifact_cost_runs_both_arms_with_identical_fids():
    output = _run_benchmark("artifact_cost.py", "--trials", "1")
    line = _line(output, "digits demo, 1 trials of FID@")
    assert re.search(r"artifact_seconds recorded \d+\.\d+ s/trial", line), line
    assert line.endswith("FIDs identical in both arms: True"), line


@pytest.mark.postgres
@pytest.mark.slow
def test_storage_load_measures_each_worker_count_on_postgresql():
    output = _run_benchmark(
        "storage_load.py", "--trials", "6", "--work", "0.05", "--processes", "1", "2"
    )
    figures = re.compile(
        r"(\d+\.\d+) ms \(lock +(\d+\.\d+) ms\), +(\d+\.\d+) queries, +(\d+\.\d+) ms worker CPU, "
        r"+(\d+\.\d+) ms database CPU; (\d+\.\d+) s objective, (\d+) ms idle at the end per trial"
    )
    for workers in ("1", "2"):
        found = figures.search(_line(output, f"  {workers} worker process(es):"))
        assert found, output
        storage_ms, lock_ms, queries, worker_cpu, _, objective_s, _ = map(float, found.groups())
        assert 0 < lock_ms < storage_ms and worker_cpu > 0
        assert 0 < objective_s <= 0.05  # the sleep a trial's rungs took, at most the whole work
        assert 20 < queries < 200  # a trial's real storage calls: a few dozen statements
