import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nat_core.bundle import read_bundle
from nat_core.digits import (
    DigitFeatures,
    PixelTokenizer,
    balanced_fid,
    classifier_accuracy,
    demo_strategies,
    levels_to_images,
    load_digit_levels,
    split_digits,
)
from nat_core.digits_build import build_digits_demo
from nat_core.fid import FeatureWeightsError, build_feature_extractor
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "digits_demo.yaml"


@pytest.fixture(autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def demo():
    return load_bundle(DEMO_BUNDLE)


def test_split_is_deterministic_disjoint_complete_and_stratified():
    a, b = split_digits(), split_digits()
    np.testing.assert_array_equal(a.train_index, b.train_index)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    assert np.intersect1d(a.train_index, a.test_index).size == 0
    levels, labels = load_digit_levels()
    assert len(a.train_index) + len(a.test_index) == len(labels) == 1797
    assert len(a.test_index) == 360
    np.testing.assert_array_equal(a.train_levels, levels[a.train_index])
    np.testing.assert_array_equal(a.test_labels, labels[a.test_index])
    assert set(np.bincount(a.test_labels, minlength=10)) <= {35, 36, 37}
    other = split_digits(seed=1)
    assert not np.array_equal(other.test_index, a.test_index)


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="held_out_fraction.*1.5"):
        split_digits(held_out_fraction=1.5)


def test_pixel_tokenizer_round_trips_the_digits_exactly():
    levels, _ = load_digit_levels()
    tokenizer = PixelTokenizer(levels=17, size=8)
    assert tokenizer.codebook_size == 17 and not list(tokenizer.parameters())
    images = levels_to_images(levels)
    codes = tokenizer.encode(images)
    assert codes.dtype == torch.int64 and codes.shape == (1797, 8, 8)
    np.testing.assert_array_equal(codes.numpy(), levels)
    decoded = tokenizer.decode(codes)
    assert decoded.shape == (1797, 3, 8, 8)
    torch.testing.assert_close(decoded, images, rtol=0, atol=0)
    torch.testing.assert_close(tokenizer.encode(decoded), codes, rtol=0, atol=0)


def test_pixel_tokenizer_rejects_bad_sizes_and_shapes():
    with pytest.raises(ValueError, match="levels.*1"):
        PixelTokenizer(levels=1)
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        PixelTokenizer().encode(torch.zeros(2, 3, 4, 4))


def test_digit_features_need_their_weights(tmp_path):
    with pytest.raises(FeatureWeightsError, match="missing.pth"):
        build_feature_extractor("digits-classifier", weights_path=tmp_path / "missing.pth")


def test_quick_build_writes_a_bundle_that_gives_a_finite_fid(tmp_path):
    path = build_digits_demo(tmp_path, quick=True, progress=False)
    assert path == tmp_path / "digits_demo.yaml"
    spec = read_bundle(path)
    assert spec.classes == 10 and spec.null_class == 10 and spec.seq_len == 64
    assert yaml.safe_load(path.read_text())["tokenizer"]["kind"] == "pixels"
    bundle = load_bundle(path)
    assert isinstance(bundle.features, DigitFeatures)
    fid = balanced_fid(bundle, GenerationStrategy.reference_initial(4), n=40, batch_size=20)
    assert math.isfinite(fid) and fid > 0


def test_committed_bundle_loads_with_a_good_classifier(demo):
    spec = demo.spec
    assert (spec.name, spec.classes, spec.null_class, spec.seq_len) == ("digits-demo", 10, 10, 64)
    assert demo.mask_id == 17 and demo.model.num_classes == 11
    split = split_digits()
    accuracy = classifier_accuracy(demo.features.classifier, split.test_levels, split.test_labels)
    assert accuracy >= 0.97
    total = sum(path.stat().st_size for path in spec.files().values())
    assert total < 4_000_000


def test_committed_bundle_ranks_the_bad_strategy_far_behind(demo):
    strategies = demo_strategies(8)
    initial = balanced_fid(demo, strategies["initial"], n=500, seed=0)
    bad = balanced_fid(demo, strategies["bad"], n=500, seed=0)
    assert math.isfinite(initial) and bad > 2.5 * initial
