"""Generator bundles (SPEC 6): everything one generator needs, named by a YAML file.

A bundle file looks like this (relative paths resolve against the file's folder)::

    name: autonat-l-imagenet256
    classes: 1000              # labels 0..classes-1 are sampled
    null_class: 1000           # the label of the unconditional pass
    tokens_per_side: 16
    model:      {class: nat_core.model:NATransformer, config: {...}, checkpoint: nnet_ema.pth}
    tokenizer:  {kind: vqgan, config: {preset: vqgan-f16-1024}, checkpoint: vqgan.ckpt}
    features:   {kind: inception-v3-fid, weights: pt_inception-2015-12-05-6726825d.pth}
    reference_stats: fid_stats.npz

``read_bundle`` (in ``nat_core.bundle_file``, which does not import torch) validates the
file (its keys through ``nat_core.schema``) and checks that every named file exists;
``build_component`` builds one part from a built-in kind (``BUILTIN_KINDS``) or a class
named ``package.module:Class``; ``nat_core.pipeline.load_bundle`` builds and checks
everything on the CPU before moving it to the device.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from nat_core.bundle_file import (
    DEFAULT_MODEL_CLASS,
    BundleError,
    BundleSpec,
    ComponentSpec,
    file_sha256,
    read_bundle,
)
from nat_core.checkpoints import load_strict
from nat_core.fid import FEATURE_EXTRACTORS, build_feature_extractor

__all__ = [
    "BUILTIN_KINDS",
    "DEFAULT_MODEL_CLASS",
    "BundleError",
    "BundleSpec",
    "ComponentSpec",
    "TokenDecoder",
    "TokenEncoder",
    "build_component",
    "component_factory",
    "file_sha256",
    "import_object",
    "load_weights",
    "read_bundle",
    "token_decoder",
    "token_encoder",
    "vqgan_tokenizer",
]


@runtime_checkable
class TokenDecoder(Protocol):
    """A tokenizer as generation uses it: codes (B, h, w) -> images (B, 3, H, W)."""

    def decode(self, codes: Tensor) -> Tensor: ...


@runtime_checkable
class TokenEncoder(Protocol):
    """A tokenizer as tokenizing a dataset uses it: images (B, 3, H, W) in [0, 1] -> codes."""

    def encode(self, images: Tensor) -> Tensor: ...


def token_decoder(tokenizer: nn.Module, kind: str) -> TokenDecoder:
    if not isinstance(tokenizer, TokenDecoder):
        raise BundleError(f"tokenizer {kind} has no decode(codes) method")
    return tokenizer


def token_encoder(tokenizer: nn.Module, kind: str) -> TokenEncoder:
    if not isinstance(tokenizer, TokenEncoder):
        raise BundleError(f"tokenizer {kind} has no encode(images) method")
    return tokenizer


def import_object(path: str, *, what: str) -> Any:
    """``package.module:Name`` -> the object."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise BundleError(f"{what} must be 'package.module:Name', got {path!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise BundleError(f"{what} {path!r} cannot be imported: {error}") from None


def vqgan_tokenizer(*, preset: str | None = None, **config: Any) -> nn.Module:
    """The VQGAN from a named preset or from ddconfig-style arguments."""
    from nat_core.vqgan import VQGAN, build_vqgan

    if preset is not None:
        if config:
            raise BundleError(f"tokenizer.config: give a preset or a config, not both ({preset!r})")
        return build_vqgan(preset)
    return VQGAN(**config)


# The built-in kinds of each section; any other kind is a class named 'package.module:Class'.
BUILTIN_KINDS: Mapping[str, Mapping[str, Callable[..., nn.Module]]] = MappingProxyType(
    {
        "model": MappingProxyType({}),
        "tokenizer": MappingProxyType({"vqgan": vqgan_tokenizer}),
        "features": FEATURE_EXTRACTORS,
    }
)
_KIND_KEYS = {"model": "model.class", "tokenizer": "tokenizer.kind", "features": "features.kind"}


def load_weights(module: nn.Module, path: Path, *, what: str) -> None:
    """Strict load with every missing, unexpected or wrongly shaped key named."""
    try:
        load_strict(module, path, what=what, ignore_suffixes=("position_ids",))
    except ValueError as error:
        raise BundleError(str(error)) from None
    except Exception as error:  # a corrupt or foreign file: say which one
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise BundleError(
            f"{what} {path} cannot be read (truncated, or not a torch.save file): {reason}"
        ) from error


def component_factory(spec: ComponentSpec, section: str) -> Callable[..., nn.Module]:
    """The callable that builds a section's part: a built-in kind or an imported class."""
    builtins = BUILTIN_KINDS[section]
    if spec.kind in builtins:
        return builtins[spec.kind]
    what = _KIND_KEYS[section]
    if builtins and ":" not in spec.kind:
        raise BundleError(
            f"{what} {spec.kind!r} is neither a built-in kind ({', '.join(sorted(builtins))}) "
            "nor a class named 'package.module:Class'"
        )
    factory = import_object(spec.kind, what=what)
    if not callable(factory):
        raise BundleError(f"{what} {spec.kind!r} is not a class or a function")
    return factory


def build_component(spec: ComponentSpec, section: str) -> nn.Module:
    """Construct a bundle part on the CPU and load its weights, without any device work.

    Models and tokenizers get ``config`` as keyword arguments and then their checkpoint;
    feature extractors get ``config`` plus ``weights_path`` and load it themselves."""
    factory = component_factory(spec, section)
    try:
        if section == "features":
            return build_feature_extractor(factory, **spec.config, weights_path=spec.file)
        module = factory(**spec.config)
    except TypeError as error:
        raise BundleError(f"{section}.config does not fit {spec.kind}: {error}") from None
    if spec.file is not None:
        load_weights(module, spec.file, what=f"{section} checkpoint")
    return module.eval()
