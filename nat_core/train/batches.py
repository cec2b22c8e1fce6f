"""The order in which training reads its token rows: a function of (seed, update, rank).

Epoch e is a permutation seeded by ``derive_seed(seed, "epoch", e)`` with the tail that fills
no global batch dropped; a global batch is split into equal consecutive shares, one per
rank. So a run resumed at update s reads exactly what an uninterrupted run reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from nat_core.data import TokenDataset
from nat_core.seeding import derive_seed
from nat_core.train.config import TrainSection
from nat_core.train.distributed import Process

__all__ = ["StepBatches", "step_batch_loader"]


class StepBatches(Sampler[np.ndarray]):
    """Row indices for updates start..stop-1 on one rank."""

    def __init__(
        self,
        num_rows: int,
        global_batch: int,
        *,
        rank: int,
        world_size: int,
        seed: int,
        start: int,
        stop: int,
    ) -> None:
        self.num_rows, self.global_batch = num_rows, global_batch
        self.share = global_batch // world_size
        self.rank, self.seed, self.start, self.stop = rank, seed, start, stop
        self.per_epoch = num_rows // global_batch

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[np.ndarray]:
        epoch, perm = -1, np.empty(0, dtype=np.int64)
        for update in range(self.start, self.stop):
            e, j = divmod(update, self.per_epoch)
            if e != epoch:
                g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", e))
                epoch, perm = e, torch.randperm(self.num_rows, generator=g).numpy()
            first = j * self.global_batch + self.rank * self.share
            yield perm[first : first + self.share]


class _RowBatches(Dataset[tuple[Tensor, Tensor]]):
    """Item ``indices`` is the batch of those rows (the sampler yields whole batches)."""

    def __init__(self, tokens: TokenDataset) -> None:
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, indices: np.ndarray) -> tuple[Tensor, Tensor]:
        return self.tokens.batch(indices)


def step_batch_loader(
    tokens: TokenDataset, config: TrainSection, process: Process, *, start: int, stop: int
) -> DataLoader[tuple[Tensor, Tensor]]:
    """(codes (B, L), labels (B,)) of this rank for updates start..stop-1, in order."""
    sampler = StepBatches(
        len(tokens),
        config.batch_size,
        rank=process.rank,
        world_size=process.world_size,
        seed=config.seed,
        start=start,
        stop=stop,
    )
    return DataLoader(
        _RowBatches(tokens),
        batch_size=None,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=process.device.type == "cuda",
        generator=torch.Generator().manual_seed(derive_seed(config.seed, "loader", process.rank)),
    )
