"""Tokens -> images -> features: the standard FID (fp32 features) whatever the precision,
and the fast decode paths (micro-batches, channels-last, compiled) give the same images."""

import pytest
import torch

from nat_core.fid import FeatureStats
from nat_core.image_path import FastDecoder, micro_batches
from nat_core.pipeline import load_bundle
from nat_core.speed import SpeedOptions
from nat_core.strategy import GenerationStrategy


@pytest.fixture(scope="module")
def tiny(tiny_bundle_path):
    return load_bundle(tiny_bundle_path)


@pytest.fixture(scope="module")
def tokens(tiny):
    labels = torch.arange(6) % tiny.spec.classes
    strategy = GenerationStrategy.reference_initial(4)
    return tiny.generate_tokens(strategy, labels, torch.Generator().manual_seed(0))


def _fid(bundle, features):
    return bundle.fid(FeatureStats.empty(features.shape[1]).update(features))


@torch.inference_mode()
def test_features_and_fid_do_not_depend_on_the_precision(tiny):
    strategy = GenerationStrategy.reference_initial(4)
    labels = torch.tensor([0, 1, 2])
    # The NAT and the VQGAN in bf16, the features of their images exactly as in fp32.
    sampled = tiny.sample_features(
        strategy, labels, torch.Generator().manual_seed(0), precision="bf16"
    )
    tokens = tiny.generate_tokens(
        strategy, labels, torch.Generator().manual_seed(0), precision="bf16"
    )
    images = tiny.decode(tokens, precision="bf16")
    fp32 = tiny.image_features(images)
    assert fp32.dtype == torch.float32
    assert torch.equal(sampled, fp32)
    assert _fid(tiny, sampled) == _fid(tiny, fp32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(tiny.image_features(images), fp32)
        # Inception itself in bf16 gives other features: the check has teeth.
        assert not torch.equal(tiny.features(images).float(), fp32)


@torch.inference_mode()
def test_micro_batched_decode_gives_the_same_images_and_features(tiny_bundle_path, tiny, tokens):
    whole_images = tiny.decode(tokens)
    whole_features = tiny.image_features(whole_images)
    small = load_bundle(tiny_bundle_path, speed=SpeedOptions(decode_batch=4))
    torch.testing.assert_close(small.decode(tokens), whole_images, rtol=0, atol=1e-6)
    strategy = GenerationStrategy.reference_initial(4)
    labels = torch.arange(6) % tiny.spec.classes
    features = small.sample_features(strategy, labels, torch.Generator().manual_seed(0))
    torch.testing.assert_close(features, whole_features, rtol=1e-5, atol=1e-5)
    assert [len(part) for part in micro_batches(tokens, 4)] == [4, 2]
    assert len(micro_batches(tokens, None)) == 1


@torch.inference_mode()
def test_channels_last_and_compiled_decoder_give_the_same_images(tiny_bundle_path, tiny, tokens):
    expected = tiny.decode(tokens)
    fast = load_bundle(
        tiny_bundle_path,
        speed=SpeedOptions(channels_last=True, compile_decoder=True, decode_batch=3),
    )
    assert isinstance(fast.fast_decoder, FastDecoder)
    assert fast.tokenizer.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast.decode(tokens), expected, rtol=1e-4, atol=1e-5)
    assert fast.fast_decoder.compile_seconds > 0


def test_out_of_range_codes_are_still_rejected_on_the_fast_path(tiny_bundle_path):
    fast = load_bundle(tiny_bundle_path, speed=SpeedOptions(channels_last=True))
    side = fast.spec.tokens_per_side
    codes = torch.full((1, side, side), fast.tokenizer.n_embed, dtype=torch.long)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        fast.fast_decoder(codes)
