"""The study's noise floor: the seed-to-seed spread of FID at each rung, measured once.

The first warm start is evaluated at every rung on ``NOISE_FLOOR_SEEDS`` sample seeds
derived from the study's own (``derive_seed(samples.seed, "noise-floor", i)``), with the
same rung-by-rung sample reuse as a trial. The first worker that finds the measurement
missing claims it under the study lock (``noise_floor_claim``), measures it as ordinary
work before its first trial, and records it (``records.NoiseFloor``); the other workers go
on with trials. The claim is a lease kept like a trial's heartbeat: renewed every
``heartbeat.interval`` seconds while the measurement runs, given up when it fails, and
taken over by the next worker that starts once it is older than ``heartbeat.grace_period``
(its worker died).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

from autonat_search import records
from autonat_search.config import StudyConfig
from autonat_search.execution.evaluation import evaluate_chunks, sample_plan
from autonat_search.notes import write_study_presentation
from autonat_search.storage import StudyLock
from autonat_search.study import warm_starts
from nat_core.fid import fid_from_stats
from nat_core.pipeline import GeneratorBundle
from nat_core.seeding import derive_seed
from nat_core.strategy import GenerationStrategy

__all__ = [
    "NOISE_FLOOR_SEEDS",
    "ensure_noise_floor",
    "measure_noise_floor",
    "noise_floor_seeds",
]

log = logging.getLogger(__name__)

NOISE_FLOOR_SEEDS = 3


def noise_floor_seeds(config: StudyConfig, count: int = NOISE_FLOOR_SEEDS) -> tuple[int, ...]:
    return tuple(derive_seed(config.samples.seed, "noise-floor", i, bits=31) for i in range(count))


def measure_noise_floor(
    bundle: GeneratorBundle,
    config: StudyConfig,
    label: str,
    strategy: GenerationStrategy,
    seeds: tuple[int, ...],
) -> records.NoiseFloor:
    per_seed: list[list[float]] = []
    for seed in seeds:
        plan = sample_plan(config, seed=seed)
        stats, done, fids = bundle.empty_stats(), 0, []
        for rung in config.fidelity.rungs:
            stats = stats.merge(
                evaluate_chunks(bundle, strategy, plan.chunks_between(done, rung), plan)
            )
            done = rung
            fids.append(fid_from_stats(stats, bundle.reference_mu, bundle.reference_sigma))
        per_seed.append(fids)
    return records.NoiseFloor(
        warm_start=label,
        seeds=tuple(seeds),
        fids={
            rung: tuple(fids[i] for fids in per_seed)
            for i, rung in enumerate(config.fidelity.rungs)
        },
    )


def _claim(study: optuna.Study, lock: StudyLock, now: float, grace_period: float) -> bool:
    with lock.held():
        if records.read_noise_floor(study) is not None:
            return False
        claimed = records.read_noise_floor_claim(study)
        if claimed is not None and now - claimed < grace_period:
            return False
        records.write_noise_floor_claim(study, now)
        return True


@contextmanager
def _keeping_claim(study: optuna.Study, interval: float) -> Iterator[None]:
    """Renew the claim every ``interval`` seconds; give it up if the measurement fails."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(interval):
            try:
                records.write_noise_floor_claim(study, time.time())
            except Exception as error:  # a missed renewal only lets another worker take over
                log.warning("noise floor claim not renewed: %s", error)

    thread = threading.Thread(target=renew, name="noise-floor-claim", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        done.set()
        thread.join()
        records.write_noise_floor_claim(study, 0.0)  # anyone may take it over now
        raise
    finally:
        done.set()
        thread.join()


def ensure_noise_floor(
    study: optuna.Study, bundle: GeneratorBundle, config: StudyConfig, lock: StudyLock
) -> records.NoiseFloor | None:
    """Measure and record the noise floor if nobody has (or is); the one recorded, if any."""
    starts = warm_starts(config)
    heartbeat = config.heartbeat
    if not starts or not _claim(study, lock, time.time(), heartbeat.grace_period):
        return records.read_noise_floor(study)
    first = starts[0]
    log.info("measuring the noise floor of study %s on %s", study.study_name, first.label)
    with _keeping_claim(study, heartbeat.interval):
        floor = measure_noise_floor(
            bundle, config, first.label, first.strategy, noise_floor_seeds(config)
        )
    records.write_noise_floor(study, floor)
    write_study_presentation(study, config)
    return floor
