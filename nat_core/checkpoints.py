"""Reading state dicts and loading them strictly, with every mismatch named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "CheckpointMismatchError",
    "StateSource",
    "check_state_dict",
    "load_strict",
    "read_state_dict",
]

StateSource = str | Path | Mapping[str, Any]
_NESTING_KEYS = ("state_dict", "model", "nnet")
_SHOWN = 8


class CheckpointMismatchError(ValueError):
    """A state dict that does not fit a model, with every offending key named."""


def read_state_dict(source: StateSource) -> dict[str, Tensor]:
    """A state dict from a mapping or a file (``torch.save`` of a dict, maybe under a key)."""
    if isinstance(source, Mapping):
        state: Any = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"checkpoint not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{source} holds a {type(state).__name__}, not a state dict")
    for key in _NESTING_KEYS:
        if isinstance(state.get(key), Mapping):
            state = dict(state[key])
    return {k.removeprefix("module."): v for k, v in state.items()}


def _listed(label: str, keys: Sequence[str]) -> str:
    more = f", ... (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{label}: {', '.join(keys[:_SHOWN])}{more}"


def _shape(value: Any) -> tuple[int, ...] | str:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Any], *, source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{k} {_shape(state_dict[k])} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if _shape(state_dict[k]) != tuple(expected[k].shape)
    )
    problems = [
        _listed(label, keys)
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrongly shaped", wrong),
        )
        if keys
    ]
    if problems:
        raise CheckpointMismatchError(f"{source} does not fit the model; " + "; ".join(problems))


def load_strict(
    model: nn.Module, source: StateSource, *, what: str, ignore_suffixes: Sequence[str] = ()
) -> None:
    """Read ``source``, drop keys ending in ``ignore_suffixes``, check, then load strictly."""
    state = read_state_dict(source)
    state = {k: v for k, v in state.items() if not k.endswith(tuple(ignore_suffixes))}
    name = f"{what} state dict" if isinstance(source, Mapping) else f"{what} {source}"
    check_state_dict(model, state, source=name)
    model.load_state_dict(state, strict=True)
