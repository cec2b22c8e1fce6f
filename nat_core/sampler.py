"""The parallel decoding loop (SPEC 3), as one function over a model callable.

Every random draw comes from the caller's generators, on the model's device. A batch may
be made of several equal chunks with one generator each, so that the samples of a chunk
do not depend on which batch it is decoded in.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from nat_core.strategy import GenerationStrategy

__all__ = ["MIN_SAMPLE_TEMP", "generate_tokens", "guided_logits", "remask_counts"]

TokenModel = Callable[[Tensor, Tensor], Tensor]
_Draw = Callable[[tuple[int, ...], torch.Generator], Tensor]  # (shape, generator) -> draws
MIN_SAMPLE_TEMP = 1e-4


def remask_counts(strategy: GenerationStrategy, seq_len: int) -> list[int]:
    """Tokens left masked after each of the first T-1 steps; the schedule alone decides."""
    masked = seq_len
    counts = []
    for ratio in strategy.mask_ratios:
        masked = max(1, min(masked - 1, math.floor(seq_len * ratio)))
        counts.append(masked)
    return counts


def _per_chunk(
    generators: Sequence[torch.Generator], chunk: int, draw: _Draw, *shape: int
) -> Tensor:
    return torch.cat([draw((chunk, *shape), g) for g in generators])


def _uniform(device: torch.device) -> _Draw:
    def draw(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        return torch.rand(shape, generator=generator, device=device)

    return draw


def _gumbel(uniform: Tensor) -> Tensor:
    """Standard Gumbel noise ``-log(-log(u))``, computed in place: ``uniform`` is consumed
    (no temporaries: on a CPU this noise costs as much as a small model's forward)."""
    tiny = torch.finfo(uniform.dtype).tiny
    return uniform.clamp_min_(tiny).log_().neg_().clamp_min_(tiny).log_().neg_()


def guided_logits(
    model: TokenModel, ids: Tensor, labels: Tensor, null_labels: Tensor, scale: float
) -> Tensor:
    """``cond + w * (cond - uncond)`` from one batched forward; ``cond`` alone when w == 0."""
    if scale == 0.0:
        return model(ids, labels).float()
    both = model(torch.cat([ids, ids]), torch.cat([labels, null_labels])).float()
    cond, uncond = both.chunk(2)
    return cond + scale * (cond - uncond)


@torch.no_grad()
def generate_tokens(
    model: TokenModel,
    strategy: GenerationStrategy,
    labels: Tensor,
    *,
    seq_len: int,
    mask_id: int,
    null_label: int,
    generator: torch.Generator | Sequence[torch.Generator],
    autocast_dtype: torch.dtype | None = None,
) -> Tensor:
    """Decode ``len(labels)`` token sequences with ``strategy``; returns ids (B, seq_len).

    ``generator`` is one generator for the batch, or one per equal chunk of the batch.
    """
    generators = [generator] if isinstance(generator, torch.Generator) else list(generator)
    batch = labels.shape[0]
    if not generators or batch % len(generators):
        raise ValueError(
            f"batch of {batch} labels cannot be split into {len(generators)} equal chunks"
        )
    device = labels.device
    for g in generators:
        if g.device.type != device.type:
            raise ValueError(f"generator on {g.device}, labels on {device}: use one device")
    chunk = batch // len(generators)
    uniform = _uniform(device)
    null_labels = torch.full_like(labels, null_label)
    counts = remask_counts(strategy, seq_len)
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )

    ids = torch.full((batch, seq_len), mask_id, dtype=torch.long, device=device)
    for step in range(strategy.steps):
        with autocast:
            logits = guided_logits(model, ids, labels, null_labels, strategy.cfg_scales[step])
        temperature = max(strategy.sample_temps[step], MIN_SAMPLE_TEMP)
        noise = _gumbel(_per_chunk(generators, chunk, uniform, seq_len, logits.shape[-1]))
        sampled = noise.add_(logits / temperature).argmax(dim=-1)  # = logits / T + noise
        is_masked = ids == mask_id
        sampled = torch.where(is_masked, sampled, ids)
        if step == strategy.steps - 1:
            return sampled
        confidence = torch.log_softmax(logits, dim=-1).gather(-1, sampled[..., None])[..., 0]
        confidence = torch.where(is_masked, confidence, torch.inf)
        # Drawn even at temperature 0, so every strategy consumes the same random stream.
        remask_noise = _gumbel(_per_chunk(generators, chunk, uniform, seq_len))
        confidence = confidence + strategy.remask_temps[step] * remask_noise
        cutoff = confidence.kthvalue(counts[step], dim=-1, keepdim=True).values
        ids = torch.where(confidence <= cutoff, mask_id, sampled)
    raise AssertionError("unreachable: the loop returns at the last step")
