"""What the sampler benchmarks share: models with random weights at given sizes, the
published strategy and its variant with the first three guidance scales exactly 0, timing
with device synchronisation, and the FLOPs of one NAT forward."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nat_core.model import NAT_CONFIGS, NATransformer
from nat_core.strategy import GenerationStrategy

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_STRATEGY = REPO_ROOT / "tests" / "reference" / "autonat_l_t8_strategy.yaml"
AUTONAT_L: dict[str, Any] = NAT_CONFIGS["AutoNAT-L"]


def published_strategy() -> GenerationStrategy:
    """AutoNAT-L's published T=8 strategy (its first three guidance scales are 1e-4)."""
    return GenerationStrategy.load(PUBLISHED_STRATEGY)


def zeros_first_three(strategy: GenerationStrategy) -> GenerationStrategy:
    """``strategy`` with its first three guidance scales exactly 0 (unconditional pass
    skipped there)."""
    scales = (0.0, 0.0, 0.0, *strategy.cfg_scales[3:])
    return dataclasses.replace(strategy, cfg_scales=scales)


@torch.no_grad()
def random_nat(
    config: dict[str, Any], *, seed: int = 0, embedding_std: float = 0.2
) -> NATransformer:
    """A NAT with its own initialisation, except a wider word embedding (the logits are
    ``h @ embedding^T``): with the default 0.02 every logit is near 0 and sampling is almost
    uniform, unlike a trained model's."""
    with torch.random.fork_rng(devices=[]):  # the initialisers draw from the global generator
        torch.manual_seed(seed)
        model = NATransformer(**config).eval()
    generator = torch.Generator().manual_seed(seed)
    weight = model.token_emb.word_embeddings.weight
    weight.copy_(torch.randn(weight.shape, generator=generator) * embedding_std)
    return model


def nat_forward_gflop(config: dict[str, Any]) -> float:
    """GFLOP of one sequence through the NAT (multiply-add = 2 FLOP): linear layers,
    attention products and the logits head."""
    dim = config["embed_dim"]
    depth = config["depth"]
    tokens = config["img_size"] ** 2 + 1
    hidden = int(dim * config["mlp_ratio"])
    blocks = depth // 2 * 2 + 1
    per_block = tokens * (3 * dim * dim + dim * dim + 2 * dim * hidden) * 2
    per_block += 2 * tokens * tokens * dim * 2  # q @ k^T and weights @ v
    skips = depth // 2 * tokens * 2 * dim * dim * 2 if config.get("skip", True) else 0
    head = (tokens - 1) * (dim * dim + dim * config["codebook_size"]) * 2
    return (blocks * per_block + skips + head) / 1e9


def loop_gflop_per_image(config: dict[str, Any], strategy: GenerationStrategy) -> float:
    """NAT GFLOP per image of a loop that skips the unconditional pass where w == 0."""
    forwards = sum(1 if w == 0.0 else 2 for w in strategy.cfg_scales)
    return forwards * nat_forward_gflop(config)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Wall seconds of ``fn()``, the device's queued work included, and its result."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def median_and_spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)
