"""The feature extractors known by name, in one explicit table.

A feature extractor is an ``nn.Module`` that takes images in [0, 1] of shape (B, 3, H, W)
and returns features (B, D), with an integer attribute ``feature_dim`` (= D). Built-in ones
are listed in ``FEATURE_EXTRACTORS``; any other is passed to ``build_feature_extractor`` as
its class (a bundle file names it as ``package.module:Class``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from nat_core.fid.network import InceptionFeatures
from nat_core.fid.statistics import is_feature_dim

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureFactory",
    "available_feature_extractors",
    "build_feature_extractor",
]

FeatureFactory = Callable[..., nn.Module]

FEATURE_EXTRACTORS: Mapping[str, FeatureFactory] = MappingProxyType(
    {"inception-v3-fid": InceptionFeatures}
)


def available_feature_extractors() -> list[str]:
    return sorted(FEATURE_EXTRACTORS)


def build_feature_extractor(kind: str | FeatureFactory, **kwargs: Any) -> nn.Module:
    """Build a built-in extractor by name, or call ``kind`` itself; checked and in eval mode."""
    if isinstance(kind, str):
        factory = FEATURE_EXTRACTORS.get(kind)
        if factory is None:
            known = ", ".join(available_feature_extractors())
            raise ValueError(f"unknown feature extractor {kind!r}; known: {known}")
        name = kind
    else:
        factory, name = kind, getattr(kind, "__qualname__", repr(kind))
    module = factory(**kwargs)
    dim = getattr(module, "feature_dim", None)
    if not isinstance(module, nn.Module) or not is_feature_dim(dim):
        raise ValueError(
            f"feature extractor {name!r} must build an nn.Module with a positive int "
            f"feature_dim, got {type(module).__name__} with feature_dim={dim!r}"
        )
    return module.eval()

