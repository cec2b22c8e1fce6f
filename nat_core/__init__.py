"""nat_core: the model side of AutoNAT generation-strategy search, free of the service.

Map of the library (each module's docstring says more):

- ``strategy``: ``GenerationStrategy``, a decoding schedule (mask ratios, re-mask and
  sample temperatures, guidance scales per step), read from and written to the reference's
  format.
- ``model``: the NAT (``NATransformer``, ``build_nat``), reference checkpoint names.
- ``vqgan``: the VQGAN tokenizer (encode images to codes, decode codes to images).
- ``sampler``: ``generate_tokens``, the decoding loop; every draw from your generators.
- ``fid``: feature extractors (``network``, ``registry``), ``FeatureStats`` (``statistics``),
  ``frechet_distance`` and ``fid_from_stats``, the one FID path (``distance``), reference
  statistics files (``reference``).
- ``bundle_file``: the bundle file read and checked without torch, and its fingerprint;
  ``bundle``: building its parts (model, tokenizer, features, reference statistics) from
  built-in kinds or ``package.module:Class``.
- ``pipeline``: ``load_bundle`` -> ``GeneratorBundle``: strategy + labels + noise ->
  images -> features -> FID.
- ``speed``: ``SpeedOptions`` (compiled NAT and decoder, channels-last, decode micro-batch),
  the fastest attention backend, host-to-device copies without a host synchronisation;
  ``compiled``: ``CompiledModule``, a module compiled once with its compile time on record;
  ``image_path``: tokens -> images (micro-batched decode) -> features in fp32.
- ``seeding``: ``derive_seed``, the one seed-derivation function.
- ``yaml_files``: YAML reading with one-line errors naming file, line and column.
- ``schema``: the declarative checker behind the bundle, training and study files.
- ``checkpoints``, ``weights``: strict state-dict loading; random initialisation.
- ``data``, ``image_folder``: token datasets in the reference's layout; image folders.
- ``train``: pretraining (``pretrain``) and tokenizing; ``python -m nat_core.train``.
- ``digits``: the CPU digits demo (data, pixel tokenizer, classifier features, build).
- ``testing``: a tiny random-weight bundle for tests.

The names below are importable from ``nat_core`` directly; each is loaded on first use, so
``import nat_core.schema`` (or ``nat_core.seeding``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nat_core.bundle import BundleError, BundleSpec, read_bundle
    from nat_core.data import TokenDataset, tokenize_images, write_token_dataset
    from nat_core.fid import (
        FeatureStats,
        build_feature_extractor,
        fid_from_stats,
        frechet_distance,
        load_reference_stats,
        save_reference_stats,
        stats_from_images,
    )
    from nat_core.model import NATransformer, build_nat, load_nat_checkpoint
    from nat_core.pipeline import GeneratorBundle, load_bundle
    from nat_core.sampler import generate_tokens
    from nat_core.seeding import derive_seed
    from nat_core.strategy import GenerationStrategy
    from nat_core.train import TrainConfig, load_train_config, pretrain
    from nat_core.vqgan import VQGAN, build_vqgan, load_vqgan_checkpoint
    from nat_core.weights import randomize

_HOMES: dict[str, str] = {
    "BundleError": "nat_core.bundle",
    "BundleSpec": "nat_core.bundle",
    "read_bundle": "nat_core.bundle",
    "TokenDataset": "nat_core.data",
    "tokenize_images": "nat_core.data",
    "write_token_dataset": "nat_core.data",
    "FeatureStats": "nat_core.fid",
    "build_feature_extractor": "nat_core.fid",
    "fid_from_stats": "nat_core.fid",
    "frechet_distance": "nat_core.fid",
    "load_reference_stats": "nat_core.fid",
    "save_reference_stats": "nat_core.fid",
    "stats_from_images": "nat_core.fid",
    "NATransformer": "nat_core.model",
    "build_nat": "nat_core.model",
    "load_nat_checkpoint": "nat_core.model",
    "GeneratorBundle": "nat_core.pipeline",
    "load_bundle": "nat_core.pipeline",
    "generate_tokens": "nat_core.sampler",
    "derive_seed": "nat_core.seeding",
    "GenerationStrategy": "nat_core.strategy",
    "TrainConfig": "nat_core.train",
    "load_train_config": "nat_core.train",
    "pretrain": "nat_core.train",
    "VQGAN": "nat_core.vqgan",
    "build_vqgan": "nat_core.vqgan",
    "load_vqgan_checkpoint": "nat_core.vqgan",
    "randomize": "nat_core.weights",
}

__all__ = [
    "BundleError",
    "BundleSpec",
    "FeatureStats",
    "GenerationStrategy",
    "GeneratorBundle",
    "NATransformer",
    "TokenDataset",
    "TrainConfig",
    "VQGAN",
    "build_feature_extractor",
    "build_nat",
    "build_vqgan",
    "derive_seed",
    "fid_from_stats",
    "frechet_distance",
    "generate_tokens",
    "load_bundle",
    "load_nat_checkpoint",
    "load_reference_stats",
    "load_train_config",
    "load_vqgan_checkpoint",
    "pretrain",
    "randomize",
    "read_bundle",
    "save_reference_stats",
    "stats_from_images",
    "tokenize_images",
    "write_token_dataset",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nat_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
