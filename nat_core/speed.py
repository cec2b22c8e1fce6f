"""How a loaded bundle runs fast on its device without changing what it computes.

- ``SpeedOptions``: compile the NAT for the loop's fixed shapes, run the VQGAN decoder
  channels-last and compiled, decode in micro-batches of ``decode_batch`` images (each one
  decoded and turned into features before the next, so memory stays bounded by the
  micro-batch, not the sampling batch). All off by default; ``SpeedOptions.fastest(device)``
  is the set meant for a GPU.
- ``fastest_attention``: xformers' kernels where they are installed and CUDA is present,
  else PyTorch's ``scaled_dot_product_attention`` (flash / memory-efficient kernels on a GPU).
- ``to_device_async``: a host tensor copied to an accelerator without a host
  synchronisation (pinned staging memory and a non-blocking copy).

The image path that uses them (micro-batched decode, fp32 features) is ``nat_core.image_path``.
In fp32 on a CPU none of these changes the tokens (tests); channels-last and compiled
convolutions may change decoded pixels in the last bits (a different summation order).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nat_core.compiled import COMPILE_MODES
from nat_core.model import xformers_available

GPU_DECODE_BATCH = 50


@dataclass(frozen=True)
class SpeedOptions:
    """``decode_batch``: images per VQGAN decode call (None: the whole sampling batch at once).
    ``compile_mode``, ``compile_backend``: passed to ``torch.compile`` (backend "eager"
    traces without generating kernels: a quick check of the compiled path)."""

    compile_model: bool = False
    compile_decoder: bool = False
    channels_last: bool = False
    decode_batch: int | None = None
    compile_mode: str | None = None
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.decode_batch is not None and (
            isinstance(self.decode_batch, bool)
            or not isinstance(self.decode_batch, int)
            or self.decode_batch < 1
        ):
            raise ValueError(f"decode_batch must be a positive integer, got {self.decode_batch!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(
                f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}"
            )

    @classmethod
    def fastest(cls, device: str | torch.device) -> SpeedOptions:
        """Everything on for a GPU (not yet measured on one by this project: see
        benchmarks/README.md); on a CPU only the bounded decode memory."""
        if torch.device(device).type == "cuda":
            return cls(
                compile_model=True,
                compile_decoder=True,
                channels_last=True,
                decode_batch=GPU_DECODE_BATCH,
            )
        return cls(decode_batch=GPU_DECODE_BATCH)


def fastest_attention(device: str | torch.device) -> str:
    """The attention backend name for ``NATransformer.set_attention``."""
    if torch.device(device).type == "cuda" and xformers_available():
        return "xformers"
    return "sdpa"


def to_device_async(tensor: Tensor, device: str | torch.device) -> Tensor:
    """``tensor`` on ``device``; a CPU -> CUDA copy goes through pinned memory with
    ``non_blocking=True``, so the host does not wait for the device (a plain ``.to`` from
    pageable memory synchronises). PyTorch's pinned-memory allocator keeps the staging
    buffer alive until the copy has run."""
    device = torch.device(device)
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
