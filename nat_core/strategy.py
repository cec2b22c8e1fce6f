"""Generation strategies: the per-step schedule of a parallel decoding run.

A strategy for T steps holds four lists (SPEC 3):

=================  =====================  ======  =========================================
field              reference key          length  meaning
=================  =====================  ======  =========================================
``mask_ratios``    ``manual_ratios``      T-1     fraction of all tokens left masked
``remask_temps``   ``manual_temp``        T-1     scale of the Gumbel noise on confidences
``sample_temps``   ``manual_samp_temp``   T       sampling temperature
``cfg_scales``     ``manual_cfg``         T       classifier-free guidance scale
=================  =====================  ======  =========================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nat_core.yaml_files import load_yaml_text, yaml_float

__all__ = ["REFERENCE_KEYS", "GenerationStrategy", "StrategyError"]

REFERENCE_KEYS: dict[str, str] = {
    "mask_ratios": "manual_ratios",
    "remask_temps": "manual_temp",
    "sample_temps": "manual_samp_temp",
    "cfg_scales": "manual_cfg",
}


class StrategyError(ValueError):
    """A strategy that is malformed: wrong counts, a value that is not a finite number in
    its range, a file that cannot be read; the message names the file, key and value."""


def _as_floats(name: str, values: Iterable[Any]) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise StrategyError(f"{name} must be a list of numbers, got {values!r}")
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
            raise StrategyError(f"{name}[{i}] must be a number, got {value!r}")
        out.append(float(value))
    return tuple(out)


@dataclass(frozen=True, init=False)
class GenerationStrategy:
    """The four per-step schedules of one decoding run, validated on construction (any
    iterables of numbers; stored as tuples of floats)."""

    mask_ratios: tuple[float, ...]
    remask_temps: tuple[float, ...]
    sample_temps: tuple[float, ...]
    cfg_scales: tuple[float, ...]

    def __init__(
        self,
        mask_ratios: Iterable[float],
        remask_temps: Iterable[float],
        sample_temps: Iterable[float],
        cfg_scales: Iterable[float],
    ) -> None:
        given = {
            "mask_ratios": mask_ratios,
            "remask_temps": remask_temps,
            "sample_temps": sample_temps,
            "cfg_scales": cfg_scales,
        }
        for name, values in given.items():
            object.__setattr__(self, name, _as_floats(name, values))
        self._check()

    def _check(self) -> None:
        steps = len(self.sample_temps)
        if steps < 1:
            raise StrategyError("sample_temps must hold one value per step (T >= 1), got []")
        expected = {
            "mask_ratios": steps - 1,
            "remask_temps": steps - 1,
            "sample_temps": steps,
            "cfg_scales": steps,
        }
        for name, length in expected.items():
            values = getattr(self, name)
            if len(values) != length:
                raise StrategyError(
                    f"{name} must have {length} values for T={steps} steps, got {len(values)}"
                )
            for i, value in enumerate(values):
                if not math.isfinite(value):
                    raise StrategyError(f"{name}[{i}] must be finite, got {value}")
        for i, ratio in enumerate(self.mask_ratios):
            if not 0.0 <= ratio <= 1.0:
                raise StrategyError(f"mask_ratios[{i}] must be in [0, 1], got {ratio}")
        for name in ("remask_temps", "sample_temps"):
            for i, value in enumerate(getattr(self, name)):
                if value < 0.0:
                    raise StrategyError(f"{name}[{i}] must be >= 0 (a temperature), got {value}")
        for i, value in enumerate(self.cfg_scales):
            if value < 0.0:
                raise StrategyError(f"cfg_scales[{i}] must be >= 0 (a guidance scale), got {value}")

    @property
    def steps(self) -> int:
        return len(self.sample_temps)

    # -- the reference's initial schedule -------------------------------------------------

    @classmethod
    def reference_initial(cls, steps: int) -> GenerationStrategy:
        """The schedule the reference's search starts from (cosine ratios, linear rest)."""
        if steps < 1:
            raise StrategyError(f"steps must be >= 1, got {steps}")
        grid = np.linspace(0.0, 1.0, steps + 1)
        return cls(
            mask_ratios=np.cos(np.linspace(0.0, math.pi / 2, steps + 1))[1:-1].tolist(),
            remask_temps=(1.0 - grid)[:-2].tolist(),
            sample_temps=[1.0] * steps,
            cfg_scales=grid[1:].tolist(),
        )

    # -- flat vectors, in the reference's order of the 4T-2 numbers ------------------------

    def to_vector(self) -> list[float]:
        return [*self.mask_ratios, *self.remask_temps, *self.sample_temps, *self.cfg_scales]

    @classmethod
    def from_vector(cls, values: Sequence[float], *, steps: int) -> GenerationStrategy:
        if len(values) != 4 * steps - 2:
            raise StrategyError(
                f"a strategy for T={steps} has {4 * steps - 2} numbers, got {len(values)}"
            )
        a, b, c = steps - 1, 2 * steps - 2, 3 * steps - 2
        return cls(
            mask_ratios=values[:a],
            remask_temps=values[a:b],
            sample_temps=values[b:c],
            cfg_scales=values[c:],
        )

    # -- the reference's file format ------------------------------------------------------

    def to_reference_dict(self) -> dict[str, list[float]]:
        return {key: list(getattr(self, name)) for name, key in REFERENCE_KEYS.items()}

    @classmethod
    def from_reference_dict(
        cls, data: Mapping[str, Any], *, source: str = "strategy"
    ) -> GenerationStrategy:
        if not isinstance(data, Mapping):
            raise StrategyError(f"{source}: expected a mapping of manual_* keys, got {data!r}")
        unknown = sorted(set(data) - set(REFERENCE_KEYS.values()))
        if unknown:
            raise StrategyError(f"{source}: unknown key {unknown[0]!r}")
        missing = [key for key in REFERENCE_KEYS.values() if key not in data]
        if missing:
            raise StrategyError(f"{source}: missing key {missing[0]!r}")
        try:
            return cls(**{name: data[key] for name, key in REFERENCE_KEYS.items()})
        except StrategyError as error:
            message = str(error)
            for name, key in REFERENCE_KEYS.items():  # name the keys as the file has them
                message = re.sub(rf"\b{name}\b", key, message)
            raise StrategyError(f"{source}: {message}") from error

    def to_yaml(self, *, comments: Sequence[str] = ()) -> str:
        """The reference's YAML: one flow list per key, `repr` floats (always with a dot, so
        that YAML 1.1 reads them back as floats), comments first."""
        lines = [f"# {line}" if line else "#" for line in comments]
        for key, values in self.to_reference_dict().items():
            lines.append(f"{key}: [{', '.join(yaml_float(v) for v in values)}]")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "strategy") -> GenerationStrategy:
        data = load_yaml_text(text, source=source, error=StrategyError)
        return cls.from_reference_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> GenerationStrategy:
        path = Path(path)
        if not path.is_file():
            raise StrategyError(f"strategy file not found: {path}")
        return cls.from_yaml(path.read_text(), source=str(path))

    def save(self, path: str | Path, *, comments: Sequence[str] = ()) -> None:
        Path(path).write_text(self.to_yaml(comments=comments))
