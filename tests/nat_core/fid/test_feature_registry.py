"""The explicit feature-extractor table and build_feature_extractor."""

from __future__ import annotations

import pytest
from torch import nn

from nat_core import fid
from nat_core.fid import InceptionFeatures, build_feature_extractor


class _FixedDim(nn.Module):
    def __init__(self, dim: int = 5) -> None:
        super().__init__()
        self.feature_dim = dim


def test_registry_builds_by_name_or_class_and_rejects_unknown() -> None:
    assert fid.available_feature_extractors() == ["inception-v3-fid"]
    assert fid.FEATURE_EXTRACTORS["inception-v3-fid"] is InceptionFeatures
    extractor = build_feature_extractor(_FixedDim, dim=7)
    assert extractor.feature_dim == 7 and not extractor.training
    with pytest.raises(ValueError, match="no-such-extractor.*known: inception-v3-fid"):
        build_feature_extractor("no-such-extractor")
    with pytest.raises(ValueError, match="positive int feature_dim.*feature_dim=0"):
        build_feature_extractor(_FixedDim, dim=0)
    with pytest.raises(TypeError):
        fid.FEATURE_EXTRACTORS["tiny-test"] = _FixedDim  # type: ignore[index]
