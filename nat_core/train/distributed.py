"""One process of a (possibly distributed) training run: its rank, its device, its group.

Under torchrun (WORLD_SIZE > 1) each process joins the process group here (NCCL on CUDA,
Gloo on the CPU) and leaves it at the end; a group that the caller already set up is used
and left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Process", "all_gather", "barrier", "joined_process_group"]


@dataclass(frozen=True)
class Process:
    """This process's place in the run and the device it trains on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1


def _pick_device(device: str | None, world_size: int) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            dev = torch.device("cuda", local_rank if world_size > 1 else 0)
        torch.cuda.set_device(dev)
    return dev


@contextmanager
def joined_process_group(device: str | None) -> Iterator[Process]:
    """This process, in the process group for the duration of the block."""
    if dist.is_available() and dist.is_initialized():
        rank, world_size, owns_group = dist.get_rank(), dist.get_world_size(), False
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        rank, world_size, owns_group = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), True
    else:
        rank, world_size, owns_group = 0, 1, False
    dev = _pick_device(device, world_size)
    if owns_group:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    try:
        yield Process(device=dev, rank=rank, world_size=world_size)
    finally:
        if owns_group:
            dist.destroy_process_group()


def all_gather(process: Process, value: Any) -> list[Any]:
    """Every rank's ``value`` (a picklable object), in rank order."""
    if process.world_size == 1:
        return [value]
    gathered: list[Any] = [None] * process.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(process: Process) -> None:
    if process.world_size > 1:
        dist.barrier()
