"""The optimiser, its learning-rate schedule, mixed precision and the EMA copy of the weights.

Learning rate: the reference steps its LambdaLR ``min(step / warmup, 1)`` with the step
count from before each update, so its first two updates run at lr 0; here update s
(1-based) runs at ``lr * min(s / warmup_steps, 1)``, and the rates agree after warm-up.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from nat_core.train.config import OptimizerSection, TrainSection

__all__ = [
    "MixedPrecision",
    "build_optimizer",
    "ema_update",
    "keep_configured_hyperparameters",
    "set_learning_rate",
    "warmup_lr",
]

logger = logging.getLogger(__name__)


def warmup_lr(step: int, *, base_lr: float, warmup_steps: int) -> float:
    """Learning rate of update ``step`` (1-based): linear warm-up, then constant."""
    if warmup_steps <= 0:
        return base_lr
    return base_lr * min(step / warmup_steps, 1.0)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, rate: float) -> None:
    """ema <- rate * ema + (1 - rate) * model, over parameters (as the reference)."""
    ema_params: list[torch.Tensor] = [p for _, p in sorted(ema_model.named_parameters())]
    params = [p.detach() for _, p in sorted(model.named_parameters())]
    torch._foreach_mul_(ema_params, rate)
    torch._foreach_add_(ema_params, params, alpha=1.0 - rate)


def build_optimizer(model: nn.Module, config: OptimizerSection) -> torch.optim.Optimizer:
    """AdamW or Adam with the config's hyper-parameters (the learning rate is set per step)."""
    kind = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return kind(
        model.parameters(),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
    )


def keep_configured_hyperparameters(
    optimizer: torch.optim.Optimizer, config: OptimizerSection
) -> None:
    """After loading a saved optimiser state, the config wins over saved hyper-parameters."""
    for group in optimizer.param_groups:
        group.update(betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


@dataclass(frozen=True)
class MixedPrecision:
    """``train.mixed_precision`` on this device: the autocast dtype (None: float32) and
    whether a gradient scaler is needed (fp16)."""

    dtype: torch.dtype | None

    @classmethod
    def for_device(cls, config: TrainSection, device: torch.device) -> MixedPrecision:
        if config.mixed_precision == "no":
            return cls(None)
        if device.type != "cuda":
            logger.warning(
                "train.mixed_precision %r needs CUDA; training in float32", config.mixed_precision
            )
            return cls(None)
        return cls(torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16)

    def autocast(self) -> AbstractContextManager[object]:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
