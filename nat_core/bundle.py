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

``read_bundle`` validates the file and checks that every named file exists;
``load_bundle`` builds and checks everything on the CPU before moving it to the device.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from nat_core.checkpoints import load_strict

DEFAULT_MODEL_CLASS = "nat_core.model:NATransformer"
TOKENIZERS: dict[str, str] = {
    "vqgan": "nat_core.bundle:vqgan_tokenizer",
    "pixels": "nat_core.digits:PixelTokenizer",
}
FEATURE_EXTRACTOR_MODULES: dict[str, str] = {
    "inception-v3-fid": "nat_core.fid",
    "digits-classifier": "nat_core.digits",
}
_TOP_KEYS = {
    "name",
    "classes",
    "null_class",
    "tokens_per_side",
    "model",
    "tokenizer",
    "features",
    "reference_stats",
}
_SECTION_KEYS = {
    "model": ({"class", "config", "checkpoint"}, "checkpoint"),
    "tokenizer": ({"kind", "config", "checkpoint"}, "checkpoint"),
    "features": ({"kind", "config", "weights"}, "weights"),
}


class BundleError(ValueError):
    """A bundle file that is malformed, names a missing file, or does not fit together."""


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


def _require_int(data: Mapping[str, Any], key: str, source: Path, minimum: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BundleError(f"{source}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _resolve(value: Any, key: str, source: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise BundleError(f"{source}: {key} must be a file path, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else source.parent / path
    if not path.is_file():
        raise BundleError(f"{source}: {key} names a missing file: {path}")
    return path


def _component(data: Mapping[str, Any], section: str, source: Path) -> ComponentSpec:
    raw = data.get(section)
    if not isinstance(raw, Mapping):
        raise BundleError(f"{source}: section {section!r} is missing or not a mapping")
    allowed, file_key = _SECTION_KEYS[section]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise BundleError(f"{source}: unknown key {section}.{unknown[0]}")
    kind_key = "class" if section == "model" else "kind"
    kind = raw.get(kind_key, DEFAULT_MODEL_CLASS if section == "model" else None)
    if not isinstance(kind, str) or not kind:
        raise BundleError(f"{source}: {section}.{kind_key} must be a name, got {kind!r}")
    config = raw.get("config") or {}
    if not isinstance(config, Mapping):
        raise BundleError(f"{source}: {section}.config must be a mapping, got {config!r}")
    file = raw.get(file_key)
    path = None if file is None else _resolve(file, f"{section}.{file_key}", source)
    return ComponentSpec(kind=kind, config=dict(config), file=path)


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
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise BundleError(f"{source}: unknown key {unknown[0]!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise BundleError(f"{source}: name must be a non-empty string, got {name!r}")
    classes = _require_int(data, "classes", source, 1)
    null_class = _require_int(data, "null_class", source, 0)
    if null_class < classes:
        raise BundleError(
            f"{source}: null_class {null_class} collides with the sampled classes 0..{classes - 1}"
        )
    return BundleSpec(
        path=source.resolve(),
        name=name,
        classes=classes,
        null_class=null_class,
        tokens_per_side=_require_int(data, "tokens_per_side", source, 1),
        model=_component(data, "model", source),
        tokenizer=_component(data, "tokenizer", source),
        features=_component(data, "features", source),
        reference_stats=_resolve(data.get("reference_stats"), "reference_stats", source),
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


def load_weights(module: nn.Module, path: Path, *, what: str) -> None:
    """Strict load with every missing, unexpected or wrongly shaped key named."""
    try:
        load_strict(module, path, what=what, ignore_suffixes=("position_ids",))
    except ValueError as error:
        raise BundleError(str(error)) from None
    except Exception as error:  # a corrupt or foreign file: say which one
        raise BundleError(f"{what} {path} cannot be read as a state dict: {error}") from None


def build_component(spec: ComponentSpec, section: str) -> nn.Module:
    """Construct a bundle part on the CPU and load its weights, without any device work."""
    if section == "features":
        return _build_features(spec)
    registry = TOKENIZERS if section == "tokenizer" else {}
    kind_key = "tokenizer.kind" if section == "tokenizer" else "model.class"
    factory = import_object(registry.get(spec.kind, spec.kind), what=kind_key)
    try:
        module = factory(**spec.config)
    except TypeError as error:
        raise BundleError(f"{section}.config does not fit {spec.kind}: {error}") from None
    if spec.file is not None:
        load_weights(module, spec.file, what=f"{section} checkpoint")
    return module.eval()


def _build_features(spec: ComponentSpec) -> nn.Module:
    from nat_core.fid import build_feature_extractor

    kwargs = {**spec.config, "weights_path": spec.file}
    if ":" in spec.kind:
        module = import_object(spec.kind, what="features.kind")(**kwargs)
        return module.eval()
    importlib.import_module(FEATURE_EXTRACTOR_MODULES.get(spec.kind, "nat_core.fid"))
    return build_feature_extractor(spec.kind, **kwargs)
