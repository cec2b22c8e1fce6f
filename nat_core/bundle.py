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

``read_bundle`` validates the file (its keys through ``nat_core.schema``) and checks that
every named file exists; ``build_component`` builds one part from a built-in kind
(``BUILTIN_KINDS``) or a class named ``package.module:Class``; ``nat_core.pipeline.load_bundle``
builds and checks everything on the CPU before moving it to the device.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import yaml
from torch import Tensor, nn

from nat_core.checkpoints import load_strict
from nat_core.fid import FEATURE_EXTRACTORS, build_feature_extractor
from nat_core.schema import SchemaError, parse, spec

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

DEFAULT_MODEL_CLASS = "nat_core.model:NATransformer"
_SECTIONS = ("model", "tokenizer", "features")


class BundleError(ValueError):
    """A bundle file that is malformed, names a missing file, or does not fit together."""


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


@dataclass(frozen=True)
class ComponentSpec:
    """One part of a bundle: what to build, its constructor config and its weights file."""

    kind: str
    config: dict[str, Any]
    file: Path | None


@dataclass(frozen=True)
class BundleSpec:
    path: Path
    name: str
    classes: int
    null_class: int
    tokens_per_side: int
    model: ComponentSpec
    tokenizer: ComponentSpec
    features: ComponentSpec
    reference_stats: Path
    content: dict[str, Any] = field(repr=False)

    @property
    def seq_len(self) -> int:
        return self.tokens_per_side**2

    def files(self) -> dict[str, Path]:
        named = {
            "model.checkpoint": self.model.file,
            "tokenizer.checkpoint": self.tokenizer.file,
            "features.weights": self.features.file,
            "reference_stats": self.reference_stats,
        }
        return {role: path for role, path in named.items() if path is not None}

    def fingerprint(self) -> dict[str, Any]:
        """What a study records: the file's content and the size and hash of each file."""
        return {
            "content": self.content,
            "files": {
                role: {"size": path.stat().st_size, "sha256": file_sha256(path)}
                for role, path in self.files().items()
            },
        }


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


_PATH_RULES: dict[str, Any] = {"nonempty": True, "describe": "a file path"}


@dataclass(frozen=True)
class _ModelLayout:
    """The model section less its ``class`` key (a Python keyword, checked on its own)."""

    config: dict[str, Any] = spec(dict, default_factory=dict)
    checkpoint: str | None = spec(str, default=None, **_PATH_RULES)


@dataclass(frozen=True)
class _TokenizerLayout:
    kind: str = spec(str, nonempty=True)
    config: dict[str, Any] = spec(dict, default_factory=dict)
    checkpoint: str | None = spec(str, default=None, **_PATH_RULES)


@dataclass(frozen=True)
class _FeaturesLayout:
    kind: str = spec(str, nonempty=True)
    config: dict[str, Any] = spec(dict, default_factory=dict)
    weights: str | None = spec(str, default=None, **_PATH_RULES)


@dataclass(frozen=True)
class _BundleLayout:
    """A bundle file's keys and what each accepts."""

    name: str = spec(str, nonempty=True)
    classes: int = spec(int, minimum=1)
    null_class: int = spec(int, minimum=0)
    tokens_per_side: int = spec(int, minimum=1)
    reference_stats: str = spec(str, **_PATH_RULES)
    model: _ModelLayout = spec(_ModelLayout)
    tokenizer: _TokenizerLayout = spec(_TokenizerLayout)
    features: _FeaturesLayout = spec(_FeaturesLayout)


def _optional_file(value: str | None, key: str, source: Path) -> Path | None:
    return None if value is None else _existing_file(value, key, source)


def _existing_file(value: str, key: str, source: Path) -> Path:
    """``value`` resolved against the bundle file's folder; the file must exist."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else source.parent / path
    if not path.is_file():
        raise BundleError(f"{source}: {key} names a missing file: {path}")
    return path


def _checked_layout(data: Mapping[str, Any], source: Path) -> tuple[_BundleLayout, Any]:
    """The schema-checked file and its model class. Sections must be present; ``config:``
    left empty (null) means no arguments."""
    sections: dict[str, Any] = {}
    for section in _SECTIONS:
        raw = data.get(section)
        if not isinstance(raw, Mapping):
            raise BundleError(f"{source}: section {section!r} is missing or not a mapping")
        sections[section] = {k: v for k, v in raw.items() if not (k == "config" and v is None)}
    model_class = sections["model"].pop("class", DEFAULT_MODEL_CLASS)
    if not isinstance(model_class, str) or not model_class.strip():
        raise BundleError(f"{source}: model.class must be a non-empty string, got {model_class!r}")
    try:
        layout = parse(_BundleLayout, {**data, **sections})
    except SchemaError as error:
        raise BundleError(f"{source}: {error}") from None
    return layout, model_class


def read_bundle(path: str | Path) -> BundleSpec:
    """Parse and validate a bundle file; every file it names must exist."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise BundleError(f"bundle file not found: {source}")
    try:
        data = yaml.safe_load(source.read_text())
    except yaml.YAMLError as error:
        raise BundleError(f"{source}: not valid YAML ({error})") from None
    if not isinstance(data, Mapping):
        raise BundleError(f"{source}: expected a mapping at the top level")
    layout, model_class = _checked_layout(data, source)
    if layout.null_class < layout.classes:
        raise BundleError(
            f"{source}: null_class {layout.null_class} collides with the sampled classes "
            f"0..{layout.classes - 1}"
        )
    model, tokenizer, features = layout.model, layout.tokenizer, layout.features
    return BundleSpec(
        path=source.resolve(),
        name=layout.name,
        classes=layout.classes,
        null_class=layout.null_class,
        tokens_per_side=layout.tokens_per_side,
        model=ComponentSpec(
            model_class, model.config, _optional_file(model.checkpoint, "model.checkpoint", source)
        ),
        tokenizer=ComponentSpec(
            tokenizer.kind,
            tokenizer.config,
            _optional_file(tokenizer.checkpoint, "tokenizer.checkpoint", source),
        ),
        features=ComponentSpec(
            features.kind,
            features.config,
            _optional_file(features.weights, "features.weights", source),
        ),
        reference_stats=_existing_file(layout.reference_stats, "reference_stats", source),
        content=dict(data),
    )


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
        raise BundleError(f"{what} {path} cannot be read as a state dict: {error}") from None


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
