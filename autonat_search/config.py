"""Study files (``studies/*.yaml``) parsed into a validated, typed configuration.

Every error names the key it is about (``space.ranges.cfg``) and the bad value; unknown keys
are errors. ``StudyConfig.to_dict()`` is the canonical form stored in the study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from autonat_search.errors import ConfigError

SPACE_KINDS = ("per-step", "parametric")
SAMPLERS = ("tpe", "gp", "cmaes", "random")
PRUNERS = ("successive-halving", "median", "none")
LABEL_MODES = ("balanced", "uniform")
DEVICE_KINDS = ("cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
WARM_STARTS = ("reference-initial", "autonat-l-t8-published")
MASK_FAMILIES = ("cosine", "power")
RANGE_KEYS = {
    "per-step": ("mask_ratio", "remask_temp", "sample_temp", "cfg"),
    "parametric": ("mask_ratio", "mask_exponent", "remask_temp", "sample_temp", "cfg"),
}
DEFAULT_RANGES = {
    "mask_ratio": (0.0, 1.0),
    "mask_exponent": (0.25, 4.0),
    "remask_temp": (0.0, 4.0),
    "sample_temp": (0.0, 4.0),
    "cfg": (0.0, 4.0),
}


@dataclass(frozen=True)
class SpaceConfig:
    kind: str = "per-step"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    mask_families: tuple[str, ...] = MASK_FAMILIES


@dataclass(frozen=True)
class SamplerConfig:
    name: str = "tpe"
    seed: int = 0


@dataclass(frozen=True)
class FidelityConfig:
    rungs: tuple[int, ...] = (5000, 10000, 50000)
    pruner: str = "successive-halving"
    reduction_factor: int = 3


@dataclass(frozen=True)
class SamplesConfig:
    seed: int = 0
    chunk: int = 125
    batch_size: int = 250
    labels: str = "balanced"


@dataclass(frozen=True)
class DeviceConfig:
    kind: str = "cuda"
    precision: str = "bf16"


@dataclass(frozen=True)
class StudyConfig:
    name: str
    bundle: str
    steps: int
    n_trials: int
    space: SpaceConfig = field(default_factory=SpaceConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    warm_start: tuple[str, ...] = ("reference-initial",)
    source_dir: Path = field(default=Path("."), compare=False)

    @property
    def full_samples(self) -> int:
        return self.fidelity.rungs[-1]

    def bundle_path(self) -> Path:
        path = Path(self.bundle).expanduser()
        return path if path.is_absolute() else (self.source_dir / path).resolve()

    def warm_start_path(self, entry: str) -> Path:
        path = Path(entry).expanduser()
        return path if path.is_absolute() else (self.source_dir / path).resolve()

    def to_dict(self) -> dict[str, Any]:
        """The canonical, YAML/JSON-friendly form (stored in the study)."""
        data = asdict(self)
        data.pop("source_dir")
        n_trials = data.pop("n_trials")
        data["budget"] = {"n_trials": n_trials}
        data["space"]["ranges"] = {k: list(v) for k, v in self.space.ranges.items()}
        data["space"]["mask_families"] = list(self.space.mask_families)
        data["fidelity"]["rungs"] = list(self.fidelity.rungs)
        data["warm_start"] = list(self.warm_start)
        return data

    def with_budget(self, n_trials: int) -> StudyConfig:
        return replace(self, n_trials=n_trials)


# -- parsing helpers -----------------------------------------------------------------------


def _section(data: Mapping[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"unknown key {key}.{unknown[0]}")
    return dict(value)


def _int(value: Any, key: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _range(value: Any, key: str) -> tuple[float, float]:
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok or not 0.0 <= value[0] < value[1]:
        raise ConfigError(f"{key} must be [low, high] with 0 <= low < high, got {value!r}")
    return float(value[0]), float(value[1])


def _parse_space(data: Mapping[str, Any]) -> SpaceConfig:
    raw = _section(data, "space", {"kind", "ranges", "mask_families"})
    kind = _choice(raw.get("kind", "per-step"), "space.kind", SPACE_KINDS)
    ranges_raw = raw.get("ranges") or {}
    if not isinstance(ranges_raw, Mapping):
        raise ConfigError(f"space.ranges must be a mapping, got {ranges_raw!r}")
    allowed = RANGE_KEYS[kind]
    unknown = sorted(set(ranges_raw) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key space.ranges.{unknown[0]} for space.kind {kind}")
    ranges = {k: DEFAULT_RANGES[k] for k in allowed}
    for key, value in ranges_raw.items():
        ranges[key] = _range(value, f"space.ranges.{key}")
    if ranges["mask_ratio"][1] > 1.0:
        raise ConfigError(f"space.ranges.mask_ratio must lie in [0, 1], got {ranges_raw}")
    if "mask_exponent" in ranges and ranges["mask_exponent"][0] <= 0.0:
        raise ConfigError(f"space.ranges.mask_exponent must be > 0, got {ranges['mask_exponent']}")
    families = raw.get("mask_families", list(MASK_FAMILIES))
    if not isinstance(families, list) or not families:
        raise ConfigError(f"space.mask_families must be a non-empty list, got {families!r}")
    for i, family in enumerate(families):
        _choice(family, f"space.mask_families[{i}]", MASK_FAMILIES)
    return SpaceConfig(kind=kind, ranges=ranges, mask_families=tuple(families))


def _parse_fidelity(data: Mapping[str, Any], chunk: int) -> FidelityConfig:
    raw = _section(data, "fidelity", {"rungs", "pruner", "reduction_factor"})
    rungs = raw.get("rungs", list(FidelityConfig.rungs))
    if not isinstance(rungs, list) or not rungs:
        raise ConfigError(
            f"fidelity.rungs must be a non-empty list of sample counts, got {rungs!r}"
        )
    for i, n in enumerate(rungs):
        _int(n, f"fidelity.rungs[{i}]", minimum=2)
        if n % chunk:
            raise ConfigError(
                f"fidelity.rungs[{i}] = {n} is not a multiple of samples.chunk = {chunk}"
            )
        if i and n <= rungs[i - 1]:
            raise ConfigError(f"fidelity.rungs must increase, got {rungs!r}")
    return FidelityConfig(
        rungs=tuple(rungs),
        pruner=_choice(raw.get("pruner", "successive-halving"), "fidelity.pruner", PRUNERS),
        reduction_factor=_int(
            raw.get("reduction_factor", 3), "fidelity.reduction_factor", minimum=2
        ),
    )


def _parse_samples(data: Mapping[str, Any]) -> SamplesConfig:
    raw = _section(data, "samples", {"seed", "chunk", "batch_size", "labels"})
    chunk = _int(raw.get("chunk", 125), "samples.chunk", minimum=1)
    batch = _int(raw.get("batch_size", 2 * chunk), "samples.batch_size", minimum=1)
    if batch % chunk:
        raise ConfigError(
            f"samples.batch_size = {batch} is not a multiple of samples.chunk = {chunk}"
        )
    return SamplesConfig(
        seed=_int(raw.get("seed", 0), "samples.seed", minimum=0),
        chunk=chunk,
        batch_size=batch,
        labels=_choice(raw.get("labels", "balanced"), "samples.labels", LABEL_MODES),
    )


def parse_study_config(data: Any, *, source_dir: Path = Path(".")) -> StudyConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"a study file holds a mapping at the top level, got {data!r}")
    top = {
        "name",
        "bundle",
        "steps",
        "space",
        "sampler",
        "fidelity",
        "budget",
        "samples",
        "device",
        "warm_start",
    }
    unknown = sorted(set(data) - top)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name must be a non-empty string, got {name!r}")
    bundle = data.get("bundle")
    if not isinstance(bundle, str) or not bundle:
        raise ConfigError(f"bundle must be the path of a bundle file, got {bundle!r}")
    steps = _int(data.get("steps"), "steps", minimum=2)
    sampler_raw = _section(data, "sampler", {"name", "seed"})
    budget_raw = _section(data, "budget", {"n_trials"})
    device_raw = _section(data, "device", {"kind", "precision"})
    samples = _parse_samples(data)
    warm = data.get("warm_start", ["reference-initial"]) or []
    if not isinstance(warm, list):
        raise ConfigError(f"warm_start must be a list, got {warm!r}")
    for i, entry in enumerate(warm):
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"warm_start[{i}] must be a name or a strategy file, got {entry!r}")
        if entry == "autonat-l-t8-published" and steps != 8:
            raise ConfigError(f"warm_start[{i}] {entry} is an 8-step strategy; steps is {steps}")
        if entry not in WARM_STARTS and not entry.endswith((".yaml", ".yml")):
            raise ConfigError(
                f"warm_start[{i}] must be one of {', '.join(WARM_STARTS)} or a .yaml "
                f"strategy file, got {entry!r}"
            )
    return StudyConfig(
        name=name.strip(),
        bundle=bundle,
        steps=steps,
        n_trials=_int(budget_raw.get("n_trials"), "budget.n_trials", minimum=1),
        space=_parse_space(data),
        sampler=SamplerConfig(
            name=_choice(sampler_raw.get("name", "tpe"), "sampler.name", SAMPLERS),
            seed=_int(sampler_raw.get("seed", 0), "sampler.seed", minimum=0),
        ),
        fidelity=_parse_fidelity(data, samples.chunk),
        samples=samples,
        device=DeviceConfig(
            kind=_choice(device_raw.get("kind", "cuda"), "device.kind", DEVICE_KINDS),
            precision=_choice(device_raw.get("precision", "bf16"), "device.precision", PRECISIONS),
        ),
        warm_start=tuple(warm),
        source_dir=source_dir,
    )


def load_study_config(path: str | Path) -> StudyConfig:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"study file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    try:
        return parse_study_config(data, source_dir=path.resolve().parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
