"""Shared pieces of the training tests: a tiny NAT, a learnable token file, a config."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nat_core.data import write_token_dataset

TINY_NAT = dict(img_size=4, codebook_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=4)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny matrices on a shared 2-core machine: more threads only contend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_nat() -> dict[str, int]:
    return dict(TINY_NAT)


@pytest.fixture
def write_tokens(tmp_path: Path) -> Callable[..., Path]:
    """``write_tokens(n=24)``: rows whose codes follow from the label and the position (a
    learnable dataset), written to ``tmp_path / "tokens.npy"``."""

    def write(n: int = 24) -> Path:
        labels = np.arange(n) % 3
        codes = (labels[:, None] * 3 + np.arange(16)[None] // 2) % 8
        rows = np.concatenate([labels[:, None], codes], 1)
        return write_token_dataset(tmp_path / "tokens.npy", rows)

    return write


@pytest.fixture
def config_for() -> Callable[..., dict[str, Any]]:
    """``config_for(data, **train)``: a training config for the tiny NAT on ``data``."""

    def make(data: Path, **train: Any) -> dict[str, Any]:
        return {
            "train": {
                "n_steps": 10,
                "batch_size": 4,
                "log_interval": 1,
                "save_interval": 100,
                "num_workers": 0,
                "ema": 0.9,
                **train,
            },
            "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.03, "betas": [0.9, 0.99]},
            "lr_scheduler": {"name": "customized", "warmup_steps": 2},
            "nnet": dict(TINY_NAT),
            "muse": {"ignore_ind": -1, "smoothing": 0.1},
            "dataset": {"name": "tokens", "path": str(data), "cfg": True, "p_uncond": 0.15},
        }

    return make
