"""Study files (``studies/*.yaml``) parsed into a validated, typed configuration.

Every error names the key it is about (``space.ranges.cfg``) and the bad value; unknown keys
are errors. ``StudyConfig.to_dict()`` is the canonical form stored in the study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autonat_search.errors import ConfigError
from nat_core.schema import Field, SchemaError, parse, spec
from nat_core.yaml_files import load_yaml_text

if TYPE_CHECKING:  # nat_core.pipeline imports torch; a study file is read without it
    from nat_core.pipeline import Precision

__all__ = [
    "DEFAULT_ARTIFACT_STORE",
    "DEFAULT_RANGES",
    "DEVICE_KINDS",
    "LABEL_MODES",
    "MASK_FAMILIES",
    "PRECISIONS",
    "PRUNERS",
    "RANGE_KEYS",
    "SAMPLERS",
    "SPACE_KINDS",
    "WARM_STARTS",
    "ArtifactsConfig",
    "BudgetConfig",
    "DeviceConfig",
    "FidelityConfig",
    "HeartbeatConfig",
    "SamplerConfig",
    "SamplesConfig",
    "SpaceConfig",
    "StudyConfig",
    "study_identity",
    "load_study_config",
    "parse_study_config",
    "pruner_decision_points",
]

SPACE_KINDS = ("per-step", "parametric", "raw", "centered")
SAMPLERS = ("tpe", "gp", "cmaes", "random", "finite-difference")
# successive-halving: ours, deciding at exactly the study's rungs; optuna-successive-halving:
# Optuna's, deciding at rungs[0] * reduction_factor^k (refused unless every rung is one).
PRUNERS = ("successive-halving", "optuna-successive-halving", "median", "none")
LABEL_MODES = ("balanced", "uniform")
DEVICE_KINDS = ("cpu", "cuda")
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")  # nat_core.pipeline's
WARM_STARTS = ("reference-initial", "autonat-l-t8-published")
MASK_FAMILIES = ("cosine", "power")
DEFAULT_ARTIFACT_STORE = "artifacts/"
NO_ARTIFACTS = "none"
RANGE_KEYS = {
    "per-step": ("mask_ratio", "remask_temp", "sample_temp", "cfg"),
    "parametric": ("mask_ratio", "mask_exponent", "remask_temp", "sample_temp", "cfg"),
    "raw": ("mask_ratio", "remask_temp", "sample_temp", "cfg"),
    "centered": ("mask_ratio", "remask_temp", "sample_temp", "cfg"),
}
DEFAULT_RANGES = {
    "mask_ratio": (0.0, 1.0),
    "mask_exponent": (0.25, 4.0),
    "remask_temp": (0.0, 4.0),
    "sample_temp": (0.0, 4.0),
    "cfg": (0.0, 4.0),
}


def _is_range(value: tuple[Any, ...]) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    return len(value) == 2 and numbers and 0.0 <= value[0] < value[1]


_RANGE = Field(
    list,
    rule=_is_range,
    convert=lambda v: (float(v[0]), float(v[1])),
    describe="[low, high] with 0 <= low < high",
)


@dataclass(frozen=True)
class SpaceConfig:
    kind: str = spec(str, default="per-step", choices=SPACE_KINDS)
    # Completed with DEFAULT_RANGES for the kind's keys by parse_study_config.
    ranges: dict[str, tuple[float, float]] = spec(
        dict, default_factory=dict, keys=tuple(DEFAULT_RANGES), item=_RANGE
    )
    mask_families: tuple[str, ...] = spec(
        list, default=MASK_FAMILIES, nonempty=True, item=Field(str, choices=MASK_FAMILIES)
    )


@dataclass(frozen=True)
class SamplerConfig:
    name: str = spec(str, default="tpe", choices=SAMPLERS)
    seed: int = spec(int, default=0, minimum=0)
    # finite-difference only: element-wise gradient clipping (None: none, as by default)
    grad_clip: float | None = spec(float, default=None, above=0)


@dataclass(frozen=True)
class FidelityConfig:
    rungs: tuple[int, ...] = spec(
        list,
        default=(5000, 10000, 50000),
        nonempty=True,
        item=Field(int, minimum=2),
        describe="a non-empty list of sample counts",
    )
    pruner: str = spec(str, default="successive-halving", choices=PRUNERS)
    reduction_factor: int = spec(int, default=3, minimum=2)


@dataclass(frozen=True)
class BudgetConfig:
    n_trials: int = spec(int, minimum=1)


@dataclass(frozen=True)
class SamplesConfig:
    seed: int = spec(int, default=0, minimum=0)
    chunk: int = spec(int, default=125, minimum=1)
    batch_size: int = spec(int, default=None, minimum=1)  # default: two chunks
    labels: str = spec(str, default="balanced", choices=LABEL_MODES)

    def __post_init__(self) -> None:
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", 2 * self.chunk)


@dataclass(frozen=True)
class HeartbeatConfig:
    """Seconds between a running trial's heartbeats, and without one before the trial is
    failed and re-run; one value for every worker of the study."""

    interval: int = spec(int, default=30, minimum=1)
    grace_period: int = spec(int, default=120, minimum=1)


HEARTBEAT_GRACE_INTERVALS = 3


@dataclass(frozen=True)
class DeviceConfig:
    kind: str = spec(str, default="cuda", choices=DEVICE_KINDS)
    precision: Precision = spec(str, default="bf16", choices=PRECISIONS)


@dataclass(frozen=True)
class ArtifactsConfig:
    # A folder (relative to the study file), s3://bucket/prefix, or "none".
    store: str = spec(
        str,
        default=DEFAULT_ARTIFACT_STORE,
        nonempty=True,
        describe='a folder, s3://bucket/prefix or "none"',
    )


@dataclass(frozen=True)
class StudyConfig:
    name: str = spec(str, nonempty=True, convert=str.strip)
    bundle: str = spec(str, nonempty=True, describe="the path of a bundle file")
    steps: int = spec(int, minimum=2)
    budget: BudgetConfig = spec(BudgetConfig)
    space: SpaceConfig = spec(SpaceConfig)
    sampler: SamplerConfig = spec(SamplerConfig)
    fidelity: FidelityConfig = spec(FidelityConfig)
    samples: SamplesConfig = spec(SamplesConfig)
    device: DeviceConfig = spec(DeviceConfig)
    heartbeat: HeartbeatConfig = spec(HeartbeatConfig)
    warm_start: tuple[str, ...] = spec(
        list,
        default=("reference-initial",),
        item=Field(str, nonempty=True, describe="a name or a strategy file"),
    )
    artifacts: ArtifactsConfig = spec(ArtifactsConfig)
    source_dir: Path = field(default=Path("."), compare=False)  # not a file key

    @property
    def n_trials(self) -> int:
        return self.budget.n_trials

    @property
    def full_samples(self) -> int:
        return self.fidelity.rungs[-1]

    def bundle_path(self) -> Path:
        path = Path(self.bundle).expanduser()
        return path if path.is_absolute() else (self.source_dir / path).resolve()

    def warm_start_path(self, entry: str) -> Path:
        path = Path(entry).expanduser()
        return path if path.is_absolute() else (self.source_dir / path).resolve()

    def artifact_location(self) -> str | None:
        """Where trials upload their artifacts: an absolute folder, an ``s3://`` URL, or None
        (``store: none``)."""
        store = self.artifacts.store.strip()
        if store.lower() == NO_ARTIFACTS:
            return None
        if "://" in store:
            return store
        path = Path(store).expanduser()
        return str(path if path.is_absolute() else (self.source_dir / path).resolve())

    def to_dict(self) -> dict[str, Any]:
        """The canonical, YAML/JSON-friendly form (stored in the study)."""
        data = asdict(self)
        data.pop("source_dir")
        if data["sampler"]["grad_clip"] is None:  # so that older stored configs reconcile
            del data["sampler"]["grad_clip"]
        return _plain(data)

    def with_budget(self, n_trials: int) -> StudyConfig:
        return replace(self, budget=BudgetConfig(n_trials=n_trials))

    def with_batch_size(self, batch_size: int) -> StudyConfig:
        """This node's batch size (a node's choice: results do not depend on it)."""
        chunk = self.samples.chunk
        if batch_size < 1 or batch_size % chunk:
            raise ConfigError(
                f"batch size {batch_size} must be a positive multiple of samples.chunk = {chunk}"
            )
        return replace(self, samples=replace(self.samples, batch_size=batch_size))


def study_identity(config: dict[str, Any]) -> dict[str, Any]:
    """A stored or new config's canonical form without what each node may choose
    (``samples.batch_size``): what must match for two configs to be the same study."""
    samples = {k: v for k, v in config.get("samples", {}).items() if k != "batch_size"}
    return {**config, "samples": samples}


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: the form JSON gives back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- rules across keys ------------------------------------------------------------------------


def _complete_space(space: SpaceConfig) -> SpaceConfig:
    allowed = RANGE_KEYS[space.kind]
    for key in space.ranges:
        if key not in allowed:
            raise ConfigError(f"unknown key space.ranges.{key} for space.kind {space.kind}")
    ranges = {k: space.ranges.get(k, DEFAULT_RANGES[k]) for k in allowed}
    if ranges["mask_ratio"][1] > 1.0:
        raise ConfigError(
            f"space.ranges.mask_ratio must lie in [0, 1], got {list(ranges['mask_ratio'])}"
        )
    if "mask_exponent" in ranges and ranges["mask_exponent"][0] <= 0.0:
        raise ConfigError(
            f"space.ranges.mask_exponent must be > 0, got {list(ranges['mask_exponent'])}"
        )
    return replace(space, ranges=ranges)


def _check_rungs(fidelity: FidelityConfig, chunk: int) -> None:
    rungs = fidelity.rungs
    for i, n in enumerate(rungs):
        if n % chunk:
            raise ConfigError(
                f"fidelity.rungs[{i}] = {n} is not a multiple of samples.chunk = {chunk}"
            )
        if i and n <= rungs[i - 1]:
            raise ConfigError(f"fidelity.rungs must increase, got {list(rungs)}")


def _check_sampler(sampler: SamplerConfig, space: SpaceConfig) -> None:
    if sampler.grad_clip is not None and sampler.name != "finite-difference":
        raise ConfigError(
            f"sampler.grad_clip is for the finite-difference sampler, not {sampler.name}"
        )
    if sampler.name == "finite-difference" and space.kind != "raw":
        raise ConfigError(
            "sampler.name finite-difference works on the raw per-step numbers: "
            f"space.kind must be raw, got {space.kind}"
        )


def pruner_decision_points(fidelity: FidelityConfig) -> tuple[int, ...] | None:
    """The sample counts where the pruner can decide below the top rung (None: any step)."""
    top = fidelity.rungs[-1]
    if fidelity.pruner == "optuna-successive-halving":
        points, point = [], fidelity.rungs[0]
        while point < top:
            points.append(point)
            point *= fidelity.reduction_factor
        return tuple(points)
    if fidelity.pruner == "successive-halving":
        return fidelity.rungs[:-1]
    return None


def _check_pruner(fidelity: FidelityConfig, sampler: SamplerConfig) -> None:
    points = pruner_decision_points(fidelity)
    if points is None or sampler.name == "finite-difference":  # it runs the top rung only
        return
    for i, rung in enumerate(fidelity.rungs[:-1]):
        if rung not in points:
            shown = ", ".join(str(p) for p in points)
            raise ConfigError(
                f"fidelity.rungs[{i}] = {rung} would never decide: fidelity.pruner "
                f"{fidelity.pruner} (reduction_factor {fidelity.reduction_factor}) decides at "
                f"{shown}; list those rungs or use pruner successive-halving"
            )


def _check_samples(samples: SamplesConfig) -> None:
    if samples.batch_size % samples.chunk:
        raise ConfigError(
            f"samples.batch_size = {samples.batch_size} is not a multiple of "
            f"samples.chunk = {samples.chunk}"
        )


def _check_heartbeat(heartbeat: HeartbeatConfig) -> None:
    if heartbeat.grace_period < HEARTBEAT_GRACE_INTERVALS * heartbeat.interval:
        raise ConfigError(
            f"heartbeat.grace_period = {heartbeat.grace_period} must be at least "
            f"{HEARTBEAT_GRACE_INTERVALS} x heartbeat.interval = "
            f"{HEARTBEAT_GRACE_INTERVALS * heartbeat.interval} s"
        )


def _check_warm_starts(warm_start: tuple[str, ...], steps: int) -> None:
    for i, entry in enumerate(warm_start):
        if entry == "autonat-l-t8-published" and steps != 8:
            raise ConfigError(f"warm_start[{i}] {entry} is an 8-step strategy; steps is {steps}")
        if entry not in WARM_STARTS and not entry.endswith((".yaml", ".yml")):
            raise ConfigError(
                f"warm_start[{i}] must be one of {', '.join(WARM_STARTS)} or a .yaml "
                f"strategy file, got {entry!r}"
            )


def _check_artifacts(artifacts: ArtifactsConfig) -> None:
    store = artifacts.store.strip()
    if "://" not in store:
        return
    scheme, _, rest = store.partition("://")
    if scheme != "s3" or not rest.split("/", 1)[0]:
        raise ConfigError(
            f'artifacts.store must be a folder, s3://bucket/prefix or "none", got {store!r}'
        )


def parse_study_config(data: Any, *, source_dir: Path = Path(".")) -> StudyConfig:
    """A validated config from a study file's content (or a stored canonical form)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a study file holds a mapping at the top level, got {data!r}")
    try:
        config = parse(StudyConfig, data, source_dir=source_dir)
    except SchemaError as error:
        raise ConfigError(str(error)) from error
    _check_samples(config.samples)
    _check_heartbeat(config.heartbeat)
    _check_rungs(config.fidelity, config.samples.chunk)
    _check_sampler(config.sampler, config.space)
    _check_pruner(config.fidelity, config.sampler)
    _check_warm_starts(config.warm_start, config.steps)
    _check_artifacts(config.artifacts)
    return replace(config, space=_complete_space(config.space))


def load_study_config(path: str | Path) -> StudyConfig:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"study file not found: {path}")
    data = load_yaml_text(path.read_text(), source=path, error=ConfigError)
    try:
        # Relative paths are read from where the user sees the file (a link in studies/
        # points into the package; its ../artifacts/ is the checkout's).
        return parse_study_config(data, source_dir=path.absolute().parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
