"""The digits bundle parts: the pixel tokenizer and the classifier features."""

import numpy as np
import pytest
import torch

from nat_core.digits.data import levels_to_images, load_digit_levels
from nat_core.digits.models import DigitFeatures, PixelTokenizer
from nat_core.fid import FeatureWeightsError, build_feature_extractor


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
        build_feature_extractor(DigitFeatures, weights_path=tmp_path / "missing.pth")
