"""A module compiled once with ``torch.compile`` and kept, with its compile time on record.

A worker loads its bundle once and keeps it for every trial, so a ``CompiledModule`` made at
load time compiles the decoding loop's two shapes (B and 2B sequences) in the first trial and
reuses the kernels in all later ones. ``dynamic=False``: the loop's shapes are fixed, and a
new shape (a last, smaller batch) compiles once more rather than making every kernel dynamic.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

import torch
from torch import Tensor, nn

COMPILE_MODES: tuple[str | None, ...] = (
    None,
    "default",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)


def _call_key(args: tuple[Tensor, ...]) -> tuple[Hashable, ...]:
    """What makes torch.compile build new kernels: shapes, dtypes, devices, autocast."""
    key: list[Hashable] = [(tuple(a.shape), a.dtype, a.device.type) for a in args]
    if args and torch.is_autocast_enabled(args[0].device.type):
        key.append(("autocast", torch.get_autocast_dtype(args[0].device.type)))
    return tuple(key)


class CompiledModule:
    """``module`` compiled for fixed shapes; call it like the module.

    ``compile_seconds`` maps each input signature (shapes, dtypes, device, autocast dtype) to
    the wall time of its first call: compilation plus launching one run. No device
    synchronisation is added to measure it (a compiled call stays free of host syncs), so on
    a GPU the kernels of that first run may still be executing when the time is taken;
    compilation, on the host, dominates it by far.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        mode: str | None = None,
        backend: str = "inductor",
        dynamic: bool = False,
        fullgraph: bool = False,
    ) -> None:
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
        self.module = module
        self.mode = mode
        self.compiled = torch.compile(
            module, mode=mode, backend=backend, dynamic=dynamic, fullgraph=fullgraph
        )
        self.compile_seconds: dict[tuple[Hashable, ...], float] = {}

    @property
    def total_compile_seconds(self) -> float:
        return sum(self.compile_seconds.values())

    def __call__(self, *args: Tensor) -> Any:
        key = _call_key(args)
        if key in self.compile_seconds:
            return self.compiled(*args)
        start = time.perf_counter()
        out = self.compiled(*args)
        self.compile_seconds[key] = time.perf_counter() - start
        return out

    def __getattr__(self, name: str) -> Any:
        # Attributes the loop and the bundle read (codebook_size, mask_id, ...) come from
        # the module itself.
        if name in ("module", "compiled", "compile_seconds", "mode"):
            raise AttributeError(name)
        return getattr(self.module, name)
