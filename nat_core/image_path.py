"""Tokens -> images -> features, the part of an evaluation after the decoding loop.

- Decoding runs in micro-batches (``decode_batch`` images), each decoded and turned into
  features before the next, so memory is bounded by the micro-batch, not the sampling batch.
- The tokenizer runs in the study's precision (autocast); its images are clamped to [0, 1]
  in fp32.
- The feature network always runs in fp32, with any autocast around the call switched off:
  the standard FID (pytorch-fid and the reference run Inception in fp32), whatever the
  study's precision. Statistics are float64 (``FeatureStats``).

No function here synchronises the host with the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from nat_core.bundle import TokenDecoder
from nat_core.compiled import CompiledModule
from nat_core.speed import SpeedOptions
from nat_core.vqgan import VQGAN


class FastDecoder:
    """Token codes (B, h, w) -> images (B, C, H, W), not clamped.

    ``tokenizer`` is the bundle's tokenizer as ``nat_core.bundle.token_decoder`` checked it.
    For a VQGAN tokenizer with ``channels_last`` or ``compile_decoder`` set, the decoder is
    converted to channels-last (in place, once) and/or compiled, and codes are checked by
    ``VQGAN.check_codes`` (no host synchronisation on an accelerator). Any other tokenizer,
    or no option set, is called as ``tokenizer.decode(codes)``.
    """

    def __init__(self, tokenizer: TokenDecoder, options: SpeedOptions) -> None:
        self.tokenizer = tokenizer
        self.channels_last = False
        self.decoder: Callable[[Tensor], Tensor] | None = None
        if isinstance(tokenizer, VQGAN) and (options.channels_last or options.compile_decoder):
            self.channels_last = options.channels_last
            if self.channels_last:
                tokenizer.decoder.to(memory_format=torch.channels_last)
            self.decoder = (
                CompiledModule(
                    tokenizer.decoder,
                    mode=options.compile_mode,
                    backend=options.compile_backend,
                )
                if options.compile_decoder
                else tokenizer.decoder
            )

    @property
    def compile_seconds(self) -> float:
        if isinstance(self.decoder, CompiledModule):
            return self.decoder.total_compile_seconds
        return 0.0

    def __call__(self, codes: Tensor) -> Tensor:
        if self.decoder is None:
            return self.tokenizer.decode(codes)
        assert isinstance(self.tokenizer, VQGAN)
        self.tokenizer.check_codes(codes)
        latents = self.tokenizer.quantize.latents(codes.long())
        if self.channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        return self.decoder(latents)


def micro_batches(tensor: Tensor, size: int | None) -> tuple[Tensor, ...]:
    """``tensor`` split along dim 0 into pieces of ``size`` (the last may be smaller)."""
    if size is None or size >= tensor.shape[0]:
        return (tensor,)
    return tensor.split(size)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def decode_tokens(
    decoder: Callable[[Tensor], Tensor],
    tokens: Tensor,
    *,
    tokens_per_side: int,
    autocast_dtype: torch.dtype | None,
) -> Tensor:
    """Token ids (B, L) -> images (B, 3, H, W) in fp32, clamped to [0, 1]; one call."""
    with _autocast(tokens.device, autocast_dtype):
        images = decoder(tokens.view(-1, tokens_per_side, tokens_per_side))
    return images.float().clamp(0.0, 1.0)


def standard_features(features: nn.Module, images: Tensor) -> Tensor:
    """Features (B, D) of images in [0, 1], computed in fp32 whatever autocast is active."""
    with torch.autocast(images.device.type, enabled=False):
        return features(images.float()).float()


def tokens_to_features(
    decoder: Callable[[Tensor], Tensor],
    features: nn.Module,
    tokens: Tensor,
    *,
    tokens_per_side: int,
    autocast_dtype: torch.dtype | None,
    decode_batch: int | None,
) -> Tensor:
    """Token ids (B, L) -> features (B, D): decode and features per micro-batch."""
    parts = [
        standard_features(
            features,
            decode_tokens(
                decoder, part, tokens_per_side=tokens_per_side, autocast_dtype=autocast_dtype
            ),
        )
        for part in micro_batches(tokens, decode_batch)
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
