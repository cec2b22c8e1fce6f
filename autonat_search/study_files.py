"""The files a study file names, checked before any work: the bundle file and every file it
names (without torch), the steps against the bundle's sequence length, the warm-start strategy
files; then, optionally, every part of the bundle built and its checkpoint loaded on the CPU.
Errors are ``ConfigError`` lines that name the study file."""

from __future__ import annotations

from pathlib import Path

from autonat_search.config import WARM_STARTS, StudyConfig
from autonat_search.errors import ConfigError
from nat_core.bundle_file import BundleError, BundleSpec, read_bundle

__all__ = ["check_bundle_loads", "check_steps_fit", "check_study_files"]


def check_study_files(config: StudyConfig, source: str | Path) -> BundleSpec:
    """The files a study file (``source``) names, checked without torch: the bundle file
    (every file it names exists), the steps against the bundle's sequence length, the
    warm-start files. Errors name ``source``."""
    try:
        return _check_study_files(config)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error


def _check_study_files(config: StudyConfig) -> BundleSpec:
    try:
        bundle = read_bundle(config.bundle_path())
    except BundleError as error:
        raise ConfigError(f"bundle: {error}") from error
    check_steps_fit(config.steps, bundle)
    from nat_core.strategy import GenerationStrategy, StrategyError

    for i, entry in enumerate(config.warm_start):
        if entry in WARM_STARTS:
            continue
        try:
            strategy = GenerationStrategy.load(config.warm_start_path(entry))
        except StrategyError as error:
            raise ConfigError(f"warm_start[{i}]: {error}") from error
        if strategy.steps != config.steps:
            raise ConfigError(
                f"warm_start[{i}] {entry} has {strategy.steps} steps; steps is {config.steps}"
            )
    return bundle


def check_steps_fit(steps: int, bundle: BundleSpec) -> None:
    """Each step must unmask at least one of the bundle's tokens per image."""
    if steps > bundle.seq_len:
        raise ConfigError(
            f"steps = {steps} does not fit bundle {bundle.name!r}: its images have "
            f"{bundle.seq_len} tokens and each step must unmask at least one"
        )


def check_bundle_loads(bundle: BundleSpec) -> None:
    """Build every part of ``bundle`` on the CPU and load its checkpoint (this imports torch):
    a truncated or wrongly shaped checkpoint, or reference statistics of the wrong dimension,
    refused now rather than in every worker's actors."""
    from nat_core.checkpoints import CheckpointMismatchError
    from nat_core.fid import FeatureWeightsError, ReferenceStatsError
    from nat_core.pipeline import load_bundle

    try:
        load_bundle(bundle, device="cpu")
    except (
        BundleError,
        CheckpointMismatchError,
        FeatureWeightsError,
        ReferenceStatsError,
    ) as error:
        raise ConfigError(f"bundle: {error}") from error
