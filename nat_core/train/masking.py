"""The reference's training objective (MUSE-style masked token modelling).

Per sample: a mask ratio r ~ Beta(12, 3), ``max(1, round(L * r))`` tokens replaced by the
mask id at random positions, cross-entropy with label smoothing on those positions only,
and the label replaced by the null class with probability ``p_uncond``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import Tensor

__all__ = ["drop_labels", "mask_tokens", "masked_token_loss", "sample_mask_ratios"]


def sample_mask_ratios(
    n: int, *, beta: tuple[float, float], generator: torch.Generator
) -> Tensor:
    """n draws of Beta(a, b) (float64, on the generator's device), by the inverse CDF of
    uniforms from ``generator``."""
    a, b = beta
    if not (a > 0 and b > 0):
        raise ValueError(f"Beta parameters must be positive, got {beta}")
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    ratios = betaincinv(a, b, u.cpu().numpy())
    return torch.from_numpy(np.asarray(ratios, dtype=np.float64)).to(generator.device)


def mask_tokens(
    codes: Tensor,
    *,
    mask_id: int,
    beta: tuple[float, float] = (12.0, 3.0),
    generator: torch.Generator,
    ignore_index: int = -1,
) -> tuple[Tensor, Tensor]:
    """Mask ``max(1, round(L * r))`` random positions per row, r ~ Beta(a, b).

    Returns (ids with the mask id at masked positions, targets holding the code at masked
    positions and ``ignore_index`` elsewhere). Draws: B uniforms for the ratios, then B x L
    uniforms whose argsort gives each row a random permutation.
    """
    if codes.dim() != 2:
        raise ValueError(f"expected codes (B, L), got shape {tuple(codes.shape)}")
    if generator.device != codes.device:
        raise ValueError(f"generator on {generator.device}, codes on {codes.device}")
    n, length = codes.shape
    ratios = sample_mask_ratios(n, beta=beta, generator=generator)
    counts = torch.round(length * ratios).clamp(1, length).long()
    perm = torch.rand(n, length, generator=generator, device=codes.device).argsort(dim=1)
    masked = perm < counts[:, None]
    ids = torch.where(masked, torch.full_like(codes, mask_id), codes)
    targets = torch.where(masked, codes, torch.full_like(codes, ignore_index))
    return ids, targets


def drop_labels(
    labels: Tensor, *, p: float, null_class: int, generator: torch.Generator
) -> Tensor:
    """Each label replaced by ``null_class`` with probability p (classifier-free guidance)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p}")
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_class), labels)


def masked_token_loss(
    logits: Tensor, targets: Tensor, *, ignore_index: int = -1, smoothing: float = 0.1
) -> Tensor:
    """Mean label-smoothed cross-entropy over positions whose target is not ignored."""
    return F.cross_entropy(
        logits.float().transpose(1, 2),
        targets,
        ignore_index=ignore_index,
        label_smoothing=smoothing,
    )
