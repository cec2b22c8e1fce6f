"""The demo bundle: a quick rebuild loads and gives a finite FID; the committed one ranks
strategies as the demo says."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from nat_core.bundle import read_bundle
from nat_core.digits.build import build_digits_demo
from nat_core.digits.data import split_digits
from nat_core.digits.figures import balanced_fid, demo_strategies
from nat_core.digits.models import DigitFeatures, classifier_accuracy
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

DEMO_BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "digits_demo.yaml"


@pytest.fixture(autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def demo():
    return load_bundle(DEMO_BUNDLE)


@pytest.mark.slow
def test_quick_build_writes_a_bundle_that_gives_a_finite_fid(tmp_path):
    path = build_digits_demo(tmp_path, quick=True, progress=False)
    assert path == tmp_path / "digits_demo.yaml"
    spec = read_bundle(path)
    assert spec.classes == 10 and spec.null_class == 10 and spec.seq_len == 64
    written = yaml.safe_load(path.read_text())
    assert written["tokenizer"]["kind"] == "nat_core.digits.models:PixelTokenizer"
    assert written["features"]["kind"] == "nat_core.digits.models:DigitFeatures"
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


@pytest.mark.slow
def test_committed_bundle_ranks_the_bad_strategy_far_behind(demo):
    strategies = demo_strategies(8)
    initial = balanced_fid(demo, strategies["initial"], n=500, seed=0)
    bad = balanced_fid(demo, strategies["bad"], n=500, seed=0)
    assert math.isfinite(initial) and bad > 2.5 * initial
