"""A small declarative validator: config files parsed into frozen dataclasses.

A section is a frozen dataclass whose fields are declared with :func:`spec`::

    @dataclass(frozen=True)
    class SamplerSection:
        name: str = spec(str, default="tpe", choices=("tpe", "random"))
        seed: int = spec(int, default=0, minimum=0)

    section = parse(SamplerSection, {"name": "random"})

``parse`` is the one checker: it rejects unknown keys (``unknown key sampler.foo``), fills
defaults, checks each value against its :class:`Field` and raises :class:`SchemaError`, whose
one-line message names the dotted key and the bad value
(``sampler.seed must be an integer >= 0, got -1``). Cross-field rules (one key a multiple of
another) stay with the caller, after ``parse``.

Types: ``int``, ``float`` (ints accepted; a numeric string too, since YAML 1.1 reads ``4e-4``
as a string), ``str``, ``bool``, ``list`` (items checked by ``item``; stored as a tuple),
``dict`` (values checked by ``item``, keys limited to ``keys``) and nested sections (another
such dataclass; a missing section is parsed from ``{}``). A null value (YAML's empty value)
of a list, mapping or section reads as empty. Defaults are taken as given, not checked.
Dataclass fields declared without ``spec`` are not file keys: pass them to ``parse`` as
keyword arguments.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["Field", "SchemaError", "parse", "spec"]

T = TypeVar("T")
_METADATA_KEY = "nat_core.schema"


class SchemaError(ValueError):
    """A config value that does not fit its schema; the message names the key and the value."""


@dataclasses.dataclass(frozen=True)
class Field:
    """What one key accepts. ``describe`` replaces the generated "must be ..." phrase."""

    type: type
    required: bool = False
    minimum: float | None = None  # inclusive bounds (int, float)
    maximum: float | None = None
    above: float | None = None  # exclusive bounds (float)
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    nonempty: bool = False  # str (after stripping), list, dict
    length: int | None = None  # list
    item: Field | None = None  # list items, dict values
    keys: tuple[str, ...] | None = None  # dict: the allowed keys (None: any string)
    rule: Callable[[Any], bool] | None = None  # an extra predicate on the checked value
    convert: Callable[[Any], Any] | None = None  # applied last, e.g. str.strip
    describe: str | None = None

    def description(self) -> str:
        """The phrase after "must be" in an error message."""
        if self.describe is not None:
            return self.describe
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.type is int:
            return "an integer" + self._bounds()
        if self.type is float:
            return "a number" + self._bounds()
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "a non-empty string" if self.nonempty else "a string"
        if self.type is list:
            if self.length is not None:
                return f"a list of {self.length} items"
            return "a non-empty list" if self.nonempty else "a list"
        return "a non-empty mapping" if self.nonempty else "a mapping"

    def _bounds(self) -> str:
        low = self.minimum if self.minimum is not None else self.above
        high = self.maximum if self.maximum is not None else self.below
        if low is not None and high is not None:
            opening = "[" if self.minimum is not None else "("
            closing = "]" if self.maximum is not None else ")"
            return f" in {opening}{low}, {high}{closing}"
        if low is not None:
            return f" >= {low}" if self.minimum is not None else f" > {low}"
        if high is not None:
            return f" <= {high}" if self.maximum is not None else f" < {high}"
        return ""


def spec(
    type_: type,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    **rules: Any,
) -> Any:
    """A dataclass field that is a file key; without a default (or a section) it is required."""
    is_section = dataclasses.is_dataclass(type_)
    if is_section and default is dataclasses.MISSING and default_factory is dataclasses.MISSING:
        default_factory = type_
    required = default is dataclasses.MISSING and default_factory is dataclasses.MISSING
    metadata = {_METADATA_KEY: Field(type_, required=required, **rules)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def parse(cls: type[T], data: Any, *, key: str = "", **extra: Any) -> T:
    """``data`` (a mapping, or None for an empty one) checked against ``cls``'s fields.

    ``key`` is the dotted name of the section (empty at the top level); ``extra`` holds the
    fields that are not file keys.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SchemaError(f"{key or 'the top level'} must be a mapping, got {data!r}")
    declared = {f.name: f for f in dataclasses.fields(cls) if _METADATA_KEY in f.metadata}
    _reject_unknown(data, tuple(declared), key)
    values: dict[str, Any] = dict(extra)
    for name, dataclass_field in declared.items():
        schema: Field = dataclass_field.metadata[_METADATA_KEY]
        dotted = f"{key}.{name}" if key else name
        if name in data:
            values[name] = _check(schema, data[name], dotted)
        elif dataclasses.is_dataclass(schema.type):
            values[name] = _check(schema, {}, dotted)
        elif schema.required:
            raise SchemaError(f"missing key {dotted} (must be {schema.description()})")
    return cls(**values)


def _reject_unknown(data: Mapping[Any, Any], known: tuple[Any, ...], key: str) -> None:
    unknown = sorted((k for k in data if k not in known), key=str)
    if unknown:
        dotted = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise SchemaError(f"unknown key {dotted} (known: {', '.join(map(str, known))})")


def _check(schema: Field, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(schema.type):
        section: type = schema.type
        return parse(section, value, key=key)
    checked = _check_value(schema, value, key)
    if schema.rule is not None and not schema.rule(checked):
        raise SchemaError(f"{key} must be {schema.description()}, got {value!r}")
    return schema.convert(checked) if schema.convert is not None else checked


def _check_value(schema: Field, value: Any, key: str) -> Any:
    def bad() -> SchemaError:
        return SchemaError(f"{key} must be {schema.description()}, got {value!r}")

    if schema.choices is not None:
        bool_choices = any(isinstance(c, bool) for c in schema.choices)
        if (isinstance(value, bool) and not bool_choices) or value not in schema.choices:
            raise bad()  # True == 1: a bool only matches when bools are among the choices
        return value
    kind = schema.type
    if kind is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind is int or kind is float:
        number = _number(value, integer=kind is int)
        if number is None or not _within(schema, number):
            raise bad()
        return number
    if kind is str:
        if not isinstance(value, str) or (schema.nonempty and not value.strip()):
            raise bad()
        return value
    if kind is list:
        items = [] if value is None else value
        if not isinstance(items, list | tuple):
            raise bad()
        if (schema.nonempty and not items) or (
            schema.length is not None and len(items) != schema.length
        ):
            raise bad()
        if schema.item is None:
            return tuple(items)
        return tuple(_check(schema.item, v, f"{key}[{i}]") for i, v in enumerate(items))
    if kind is dict:
        entries = {} if value is None else value
        if not isinstance(entries, Mapping) or (schema.nonempty and not entries):
            raise bad()
        if schema.keys is not None:
            _reject_unknown(entries, schema.keys, key)
        if schema.item is None:
            return dict(entries)
        return {k: _check(schema.item, v, f"{key}.{k}") for k, v in entries.items()}
    raise TypeError(f"{key}: schema type {kind!r} is not supported")


def _number(value: Any, *, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if integer:
        return value if isinstance(value, int) else None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _within(schema: Field, number: float) -> bool:
    return not (
        (schema.minimum is not None and number < schema.minimum)
        or (schema.maximum is not None and number > schema.maximum)
        or (schema.above is not None and number <= schema.above)
        or (schema.below is not None and number >= schema.below)
    )
