"""Common random numbers: the samples of an evaluation, defined chunk by chunk (SPEC 7).

Chunk ``i`` (``chunk`` samples) has its own labels and its own generator, both seeded from
``(sample seed, i)``. A batch is a whole number of chunks, each drawing from its own
generator, so statistics do not depend on the batch size or on how many workers share an
evaluation: any split of the chunk indices merges to the same statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from autonat_search.config import StudyConfig
from nat_core.fid import FeatureStats
from nat_core.pipeline import GeneratorBundle, Precision, autocast_dtype
from nat_core.seeding import derive_seed
from nat_core.speed import to_device_async
from nat_core.strategy import GenerationStrategy

__all__ = ["SamplePlan", "evaluate_chunks", "sample_plan", "split_evenly", "stream_seed"]

_NOISE_STREAM = 0
_LABEL_STREAM = 1


def stream_seed(sample_seed: int, chunk_index: int, stream: int) -> int:
    """The 63-bit seed of one chunk's noise or labels. Its values define every FID a study
    records: ``derive_seed`` keeps them (``SeedSequence([seed, chunk, stream])``)."""
    return derive_seed(sample_seed, chunk_index, stream)


@dataclass(frozen=True)
class SamplePlan:
    """How an evaluation's samples are drawn; equal plans give equal samples."""

    seed: int
    chunk: int
    batch_size: int
    labels: str = "balanced"
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        if self.chunk < 1 or self.batch_size < self.chunk or self.batch_size % self.chunk:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of chunk {self.chunk}"
            )
        if self.labels not in ("balanced", "uniform"):
            raise ValueError(f"labels must be 'balanced' or 'uniform', got {self.labels!r}")
        autocast_dtype(self.precision)

    def chunks_between(self, start: int, stop: int) -> range:
        """Chunk indices of samples [start, stop); both must be multiples of the chunk size."""
        for n in (start, stop):
            if n % self.chunk:
                raise ValueError(f"sample count {n} is not a multiple of chunk {self.chunk}")
        return range(start // self.chunk, stop // self.chunk)

    def chunk_labels(self, index: int, classes: int) -> Tensor:
        if self.labels == "balanced":
            return (torch.arange(self.chunk) + index * self.chunk) % classes
        generator = torch.Generator().manual_seed(stream_seed(self.seed, index, _LABEL_STREAM))
        return torch.randint(0, classes, (self.chunk,), generator=generator)

    def chunk_generator(self, index: int, device: torch.device) -> torch.Generator:
        generator = torch.Generator(device=device)
        return generator.manual_seed(stream_seed(self.seed, index, _NOISE_STREAM))


def sample_plan(config: StudyConfig, *, seed: int | None = None) -> SamplePlan:
    """The study's plan; ``seed`` replaces its sample seed (a re-evaluation's fresh samples)."""
    return SamplePlan(
        seed=config.samples.seed if seed is None else seed,
        chunk=config.samples.chunk,
        batch_size=config.samples.batch_size,
        labels=config.samples.labels,
        precision=config.device.precision,
    )


def evaluate_chunks(
    bundle: GeneratorBundle,
    strategy: GenerationStrategy,
    chunks: Sequence[int],
    plan: SamplePlan,
) -> FeatureStats:
    """Feature statistics of the samples of ``chunks`` under ``plan``."""
    stats = bundle.empty_stats()
    per_batch = plan.batch_size // plan.chunk
    for start in range(0, len(chunks), per_batch):
        batch = chunks[start : start + per_batch]
        labels = torch.cat([plan.chunk_labels(i, bundle.spec.classes) for i in batch])
        generators = [plan.chunk_generator(i, bundle.device) for i in batch]
        features = bundle.sample_features(
            strategy, to_device_async(labels, bundle.device), generators, precision=plan.precision
        )
        stats.update(features)
    return stats


def split_evenly(chunks: Sequence[int], parts: int) -> list[list[int]]:
    """Contiguous, nearly equal shares of ``chunks`` for ``parts`` workers (none empty)."""
    parts = max(1, min(parts, len(chunks)))
    bounds = np.linspace(0, len(chunks), parts + 1).round().astype(int)
    return [list(chunks[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
