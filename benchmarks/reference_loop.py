"""The reference's decoding loop, run the way the reference runs it: the baseline of the
sampler benchmarks (`sampler.py` on the CPU, `gpu_check.py` on a GPU).

Our own code, written from SPEC section 3 and the reference's semantics
(LeapLabTHU/ImprovedNAT ``NATSchedule.generate`` with its ``cfg_nnet``); none of its code is
copied. What makes it the reference's, and not ours:
- two sequential forward passes per step (conditional, then unconditional), even at w = 0;
- sampling with a categorical draw (softmax, then ``torch.multinomial``);
- the re-mask Gumbel noise drawn on the host with numpy (float64), turned into a float32
  tensor and copied to the device, at every step (also at temperature 0 and at the last step);
- the re-mask count read from the data (``is_mask`` of the first sequence: a host sync);
- a full sort of the confidences for the cut-off, also at the last step, whose result is
  thrown away;
- the guidance combination in the model's output dtype (fp16 under fp16 autocast).
Categorical draws take the caller's ``torch.Generator`` (the reference uses the global one)
so that runs are repeatable; that costs the same.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor

from nat_core.sampler import TokenModel
from nat_core.strategy import GenerationStrategy

MIN_SAMPLE_TEMP = 1e-4


def _reference_cfg(
    model: TokenModel, ids: Tensor, labels: Tensor, null_labels: Tensor, scale: float
) -> Tensor:
    cond = model(ids, labels)
    uncond = model(ids, null_labels)
    return cond + scale * (cond - uncond)


@torch.no_grad()
def reference_style_tokens(
    model: TokenModel,
    strategy: GenerationStrategy,
    labels: Tensor,
    *,
    seq_len: int,
    mask_id: int,
    null_label: int,
    generator: torch.Generator,
    host_rng: np.random.Generator,
    autocast_dtype: torch.dtype | None = None,
) -> Tensor:
    """Decode ``len(labels)`` sequences as the reference does; returns ids (B, seq_len)."""
    device = labels.device
    steps = strategy.steps
    null_labels = torch.full_like(labels, null_label)
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    ids = torch.full((labels.shape[0], seq_len), mask_id, dtype=torch.long, device=device)
    sampled = ids
    for step in range(steps):
        ratio = strategy.mask_ratios[step] if step < steps - 1 else 0.0
        remask_temp = strategy.remask_temps[step] if step < steps - 1 else 0.0
        is_mask = ids == mask_id
        with autocast:
            logits = _reference_cfg(model, ids, labels, null_labels, strategy.cfg_scales[step])
        tempered = logits / max(strategy.sample_temps[step], MIN_SAMPLE_TEMP)
        probs = torch.softmax(tempered.float(), dim=-1)
        draws = torch.multinomial(probs.view(-1, probs.shape[-1]), 1, generator=generator)
        sampled = draws.view(ids.shape)
        log_probs = torch.log_softmax(logits, dim=-1)
        confidence = log_probs.gather(-1, sampled[..., None])[..., 0]
        sampled = torch.where(is_mask, sampled, ids)
        # The reference casts to float32; float64 stays float64 for the exactness check.
        confidence = torch.where(is_mask, confidence, math.inf)
        confidence = confidence.to(torch.promote_types(confidence.dtype, torch.float32))
        count = int(is_mask[0].sum())
        n = max(1, min(count - 1, math.floor(seq_len * ratio)))
        host_noise = remask_temp * host_rng.gumbel(size=tuple(confidence.shape))
        noise = torch.tensor(host_noise, dtype=torch.float32).to(device)
        confidence = confidence + noise
        cutoff = torch.sort(confidence, dim=-1).values[:, n - 1 : n]
        ids = torch.where(confidence <= cutoff, mask_id, sampled)
    return sampled
