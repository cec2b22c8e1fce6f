"""Bundle files (SPEC 6) read and checked without torch: ``read_bundle`` -> ``BundleSpec``.

Validates the file's keys (through ``nat_core.schema``) and that every file it names exists;
``nat_core.bundle`` builds the parts. Importing this module does not import torch, so a
command can refuse a bad bundle file before it pays for loading torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nat_core.schema import SchemaError, parse, spec
from nat_core.yaml_files import load_yaml_text

__all__ = [
    "DEFAULT_MODEL_CLASS",
    "BundleError",
    "BundleSpec",
    "ComponentSpec",
    "file_sha256",
    "read_bundle",
]

DEFAULT_MODEL_CLASS = "nat_core.model:NATransformer"
_SECTIONS = ("model", "tokenizer", "features")


class BundleError(ValueError):
    """A bundle file that is malformed, names a missing file, or does not fit together."""


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


def _named_files(files: Mapping[str, str | None], source: Path) -> dict[str, Path]:
    """Each named file resolved against the bundle file's folder (``None``: not named); every
    one must exist, and all that do not are named in one error."""
    resolved = {}
    for key, value in files.items():
        if value is not None:
            path = Path(value).expanduser()
            resolved[key] = path if path.is_absolute() else source.parent / path
    missing = [f"{key} names a missing file: {p}" for key, p in resolved.items() if not p.is_file()]
    if missing:
        raise BundleError(f"{source}: " + "; ".join(missing))
    return resolved


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
    data = load_yaml_text(source.read_text(), source=source, error=BundleError)
    if not isinstance(data, Mapping):
        raise BundleError(f"{source}: expected a mapping at the top level")
    layout, model_class = _checked_layout(data, source)
    if layout.null_class < layout.classes:
        raise BundleError(
            f"{source}: null_class {layout.null_class} collides with the sampled classes "
            f"0..{layout.classes - 1}"
        )
    model, tokenizer, features = layout.model, layout.tokenizer, layout.features
    files = _named_files(
        {
            "model.checkpoint": model.checkpoint,
            "tokenizer.checkpoint": tokenizer.checkpoint,
            "features.weights": features.weights,
            "reference_stats": layout.reference_stats,
        },
        source,
    )
    return BundleSpec(
        path=source.resolve(),
        name=layout.name,
        classes=layout.classes,
        null_class=layout.null_class,
        tokens_per_side=layout.tokens_per_side,
        model=ComponentSpec(model_class, model.config, files.get("model.checkpoint")),
        tokenizer=ComponentSpec(
            tokenizer.kind, tokenizer.config, files.get("tokenizer.checkpoint")
        ),
        features=ComponentSpec(features.kind, features.config, files.get("features.weights")),
        reference_stats=files["reference_stats"],
        content=dict(data),
    )
