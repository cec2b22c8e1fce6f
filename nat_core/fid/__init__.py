"""FID: feature extractors, streaming feature statistics, the Frechet distance, reference files.

- ``network``: pytorch-fid's FID InceptionV3 (``InceptionFeatures``), weights from a local file.
- ``registry``: the feature extractors known by name (``FEATURE_EXTRACTORS``) and
  ``build_feature_extractor``.
- ``statistics``: ``FeatureStats`` (mergeable count / sum / outer-product sums) and
  ``stats_from_images``.
- ``distance``: ``frechet_distance`` and ``fid_from_stats``, the one FID path.
- ``reference``: pytorch-fid ``.npz`` reference statistics, loaded and saved with checks.
"""

from nat_core.fid.distance import fid_from_stats, frechet_distance
from nat_core.fid.network import (
    INCEPTION_FEATURE_DIM,
    INCEPTION_WEIGHTS_FILENAME,
    FeatureWeightsError,
    InceptionFeatures,
    build_fid_inception_network,
)
from nat_core.fid.reference import ReferenceStatsError, load_reference_stats, save_reference_stats
from nat_core.fid.registry import (
    FEATURE_EXTRACTORS,
    FeatureFactory,
    available_feature_extractors,
    build_feature_extractor,
)
from nat_core.fid.statistics import ArrayLike, FeatureStats, feature_dim_of, stats_from_images

__all__ = [
    "FEATURE_EXTRACTORS",
    "INCEPTION_FEATURE_DIM",
    "INCEPTION_WEIGHTS_FILENAME",
    "ArrayLike",
    "FeatureFactory",
    "FeatureStats",
    "FeatureWeightsError",
    "InceptionFeatures",
    "ReferenceStatsError",
    "available_feature_extractors",
    "build_feature_extractor",
    "build_fid_inception_network",
    "feature_dim_of",
    "fid_from_stats",
    "frechet_distance",
    "load_reference_stats",
    "save_reference_stats",
    "stats_from_images",
]
