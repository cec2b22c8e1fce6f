"""Common random numbers: the samples of an evaluation, defined chunk by chunk (SPEC 7).

Chunk ``i`` (``chunk`` samples) has its own labels and its own generator, both seeded from
``(sample seed, i)``. A batch is a whole number of chunks, each drawing from its own
generator, so statistics do not depend on the batch size or on how many workers share an
evaluation: any split of the chunk indices merges to the same statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from autonat_search.config import StudyConfig
from autonat_search.errors import TrialFailure
from nat_core.fid import FeatureStats
from nat_core.pipeline import GeneratorBundle, Precision, autocast_dtype
from nat_core.seeding import derive_seed
from nat_core.speed import to_device_async
from nat_core.strategy import GenerationStrategy

__all__ = [
    "BatchSizer",
    "SamplePlan",
    "evaluate_chunks",
    "sample_plan",
    "split_evenly",
    "stream_seed",
]

log = logging.getLogger(__name__)

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


class BatchSizer:
    """Chunks per forward pass, halved (whole chunks) after an out-of-memory error and kept
    small for the rest of the actor's life. Chunks make the result independent of it."""

    def __init__(self) -> None:
        self.limit: int | None = None

    def chunks_per_batch(self, plan: SamplePlan) -> int:
        wanted = plan.batch_size // plan.chunk
        return wanted if self.limit is None else min(wanted, self.limit)

    def halve(self, current: int, plan: SamplePlan, error: str) -> None:
        if current <= 1:
            raise TrialFailure(
                f"out of memory with a single chunk of {plan.chunk} samples ({error}); "
                "use a device with more memory or a smaller samples.chunk"
            )
        self.limit = current // 2
        log.warning(
            "out of memory at %d samples per batch; now %d",
            current * plan.chunk,
            self.limit * plan.chunk,
        )


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def evaluate_chunks(
    bundle: GeneratorBundle,
    strategy: GenerationStrategy,
    chunks: Sequence[int],
    plan: SamplePlan,
    *,
    sizer: BatchSizer | None = None,
    between_batches: Callable[[], None] | None = None,
) -> FeatureStats:
    """Feature statistics of the samples of ``chunks`` under ``plan``.

    On ``torch.OutOfMemoryError`` the batch is halved and retried (``sizer`` remembers the
    smaller size); ``between_batches`` runs before each batch (a trial's liveness check).
    """
    sizer = sizer or BatchSizer()
    stats = bundle.empty_stats()
    start = 0
    while start < len(chunks):
        if between_batches is not None:
            between_batches()
        per_batch = sizer.chunks_per_batch(plan)
        batch = chunks[start : start + per_batch]
        out_of_memory: str | None = None
        try:
            features = _batch_features(bundle, strategy, batch, plan)
        except torch.OutOfMemoryError as error:
            out_of_memory = str(error).splitlines()[0] if str(error) else "out of memory"
        if out_of_memory is not None:  # outside the handler: the failed batch's tensors freed
            _free_device_memory(bundle.device)
            sizer.halve(len(batch), plan, out_of_memory)
            continue
        stats.update(features)
        start += len(batch)
    return stats


def _batch_features(
    bundle: GeneratorBundle, strategy: GenerationStrategy, batch: Sequence[int], plan: SamplePlan
) -> Tensor:
    labels = torch.cat([plan.chunk_labels(i, bundle.spec.classes) for i in batch])
    generators = [plan.chunk_generator(i, bundle.device) for i in batch]
    return bundle.sample_features(
        strategy, to_device_async(labels, bundle.device), generators, precision=plan.precision
    )


def split_evenly(chunks: Sequence[int], parts: int) -> list[list[int]]:
    """Contiguous, nearly equal shares of ``chunks`` for ``parts`` workers (none empty)."""
    parts = max(1, min(parts, len(chunks)))
    bounds = np.linspace(0, len(chunks), parts + 1).round().astype(int)
    return [list(chunks[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
