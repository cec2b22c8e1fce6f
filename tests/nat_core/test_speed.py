"""The decoding loop's speed paths give the tokens of the plain loop (fp32, CPU)."""

import pytest
import torch

from nat_core import sampler
from nat_core.compiled import CompiledModule
from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.sampler import generate_tokens, guided_logits
from nat_core.speed import SpeedOptions, fastest_attention, to_device_async
from nat_core.strategy import GenerationStrategy

SEQ_LEN, MASK_ID, NULL = 256, 32, 10


@pytest.fixture(scope="module")
def parity(reference_dir):
    return torch.load(reference_dir / "nat_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def model(parity):
    nat = NATransformer(**parity["config"]).eval()
    load_nat_checkpoint(nat, parity["state_dict"])
    return nat


def _generate(model, strategy, labels, seed):
    return generate_tokens(
        model,
        strategy,
        labels,
        seq_len=SEQ_LEN,
        mask_id=MASK_ID,
        null_label=NULL,
        generator=torch.Generator().manual_seed(seed),
    )


STOCHASTIC = GenerationStrategy(
    mask_ratios=[0.8, 0.5, 0.2],
    remask_temps=[2.0, 1.0, 0.5],
    sample_temps=[1.5, 1.0, 1.0, 0.8],
    cfg_scales=[0.0, 0.5, 1.0, 2.0],
)
ZEROS_FIRST = GenerationStrategy(
    mask_ratios=[0.8, 0.5, 0.2],
    remask_temps=[2.0, 1.0, 0.5],
    sample_temps=[1.5, 1.0, 1.0, 0.8],
    cfg_scales=[0.0, 0.0, 0.0, 2.0],
)


def _two_separate_passes(model, ids, labels, null_labels, scale):
    cond = model(ids, labels).float()
    uncond = model(ids, null_labels).float()
    return cond + scale * (cond - uncond)


def _never_skipping(model, ids, labels, null_labels, scale):
    both = model(torch.cat([ids, ids]), torch.cat([labels, null_labels])).float()
    cond, uncond = both.chunk(2)
    return cond + scale * (cond - uncond)


@torch.inference_mode()
def test_compiled_and_eager_loops_give_identical_tokens_in_fp32(parity, model):
    compiled = CompiledModule(model)
    labels = torch.tensor([0, 3, 5, 9])
    for seed in (0, 1):
        eager = _generate(model, STOCHASTIC, labels, seed)
        assert torch.equal(_generate(compiled, STOCHASTIC, labels, seed), eager)
    # The reference's own case, through the compiled model.
    strategy = GenerationStrategy.from_reference_dict(parity["strategy"])
    reference_labels = parity["labels"][:, 0]
    tokens = _generate(compiled, strategy, reference_labels, 3)
    assert torch.equal(tokens, parity["generated_tokens"])
    # One compilation per input signature: 4 and 8 sequences (w = 0, w > 0) for the first
    # batch, 2 and 4 (already compiled) for the reference's.
    assert sorted(key[0][0][0] for key in compiled.compile_seconds) == [2, 4, 8]
    assert all(seconds > 0 for seconds in compiled.compile_seconds.values())
    assert compiled.total_compile_seconds == sum(compiled.compile_seconds.values())
    assert compiled.codebook_size == model.codebook_size  # attributes pass through


@torch.inference_mode()
def test_batched_guidance_equals_two_separate_passes(model, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, MASK_ID + 1, (3, SEQ_LEN), generator=generator)
    labels = torch.tensor([1, 4, 7])
    null_labels = torch.full_like(labels, NULL)
    for scale in (0.5, 1.0, 3.0):
        batched = guided_logits(model, ids, labels, null_labels, scale)
        separate = _two_separate_passes(model, ids, labels, null_labels, scale)
        torch.testing.assert_close(batched, separate, rtol=1e-5, atol=1e-5)
    expected = _generate(model, STOCHASTIC, labels, 4)
    monkeypatch.setattr(sampler, "guided_logits", _two_separate_passes)
    assert torch.equal(_generate(model, STOCHASTIC, labels, 4), expected)


@torch.inference_mode()
def test_skipping_the_unconditional_pass_at_scale_zero_gives_the_same_tokens(model, monkeypatch):
    labels = torch.tensor([2, 6, 8, 0])
    skipped = [_generate(model, ZEROS_FIRST, labels, seed) for seed in (0, 1, 2)]
    monkeypatch.setattr(sampler, "guided_logits", _never_skipping)
    for seed, tokens in zip((0, 1, 2), skipped, strict=True):
        assert torch.equal(_generate(model, ZEROS_FIRST, labels, seed), tokens)


def test_speed_options_are_validated():
    with pytest.raises(ValueError, match="decode_batch must be a positive integer, got 0"):
        SpeedOptions(decode_batch=0)
    with pytest.raises(ValueError, match="compile_mode must be one of .*got 'fastest'"):
        SpeedOptions(compile_mode="fastest")
    with pytest.raises(ValueError, match="compile mode must be one of .*got 'turbo'"):
        CompiledModule(torch.nn.Linear(2, 2), mode="turbo")
    gpu = SpeedOptions.fastest("cuda")
    assert gpu.compile_model and gpu.compile_decoder and gpu.channels_last
    assert gpu.decode_batch is not None
    assert not SpeedOptions.fastest("cpu").compile_model


def test_attention_choice_and_host_copies_on_a_cpu():
    assert fastest_attention("cpu") == "sdpa"
    labels = torch.arange(4)
    assert to_device_async(labels, "cpu") is labels


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: pinned, non-blocking copy")
def test_host_copy_to_cuda_is_pinned_and_correct():
    labels = torch.arange(1000)
    on_device = to_device_async(labels, "cuda")
    assert torch.equal(on_device.cpu(), labels)
