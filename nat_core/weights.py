"""Random initialisation of any module from an explicit ``torch.Generator``."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["randomize"]


@torch.no_grad()
def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Fan-in scaled normal weights from ``generator``; norms at identity, biases zero."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d | nn.Linear):
            fan_in = math.prod(sub.weight.shape[1:])
            sub.weight.copy_(
                torch.randn(sub.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
            )
            if sub.bias is not None:
                sub.bias.zero_()
        elif isinstance(sub, nn.Embedding):
            sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator))
        elif isinstance(sub, nn.BatchNorm2d):
            sub.reset_parameters()
        elif isinstance(sub, nn.LayerNorm | nn.GroupNorm) and sub.weight is not None:
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)
