"""The digits demo's data: scikit-learn's bundled 8x8 handwritten digits as grey levels.

``sklearn.datasets.load_digits`` ships with scikit-learn, so nothing is downloaded. Grey
levels are integers 0..16 (17 levels); the split into training and held-out digits is
stratified by class and fixed by ``SPLIT_SEED``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "HELD_OUT_FRACTION",
    "LEVELS",
    "NULL_CLASS",
    "NUM_CLASSES",
    "SIDE",
    "SPLIT_SEED",
    "DigitsSplit",
    "levels_to_images",
    "load_digit_levels",
    "split_digits",
]

LEVELS = 17  # load_digits grey levels 0..16
SIDE = 8
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class DigitsSplit:
    """Grey levels (N, 8, 8) int64 in 0..16 and labels (N,) of each part, with the row
    indices into ``load_digits()`` that each part took."""

    train_levels: np.ndarray
    train_labels: np.ndarray
    train_index: np.ndarray
    test_levels: np.ndarray
    test_labels: np.ndarray
    test_index: np.ndarray


def load_digit_levels() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: grey levels (N, 8, 8) int64 in 0..16 and labels (N,) int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    levels = np.asarray(digits.images).round().astype(np.int64)
    return levels, np.asarray(digits.target, dtype=np.int64)


def split_digits(
    *, seed: int = SPLIT_SEED, held_out_fraction: float = HELD_OUT_FRACTION
) -> DigitsSplit:
    """The train / held-out split, stratified by class; ``seed`` fixes it."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must lie in (0, 1), got {held_out_fraction}")
    levels, labels = load_digit_levels()
    index = np.arange(len(labels))
    train_index, test_index = train_test_split(
        index, test_size=held_out_fraction, random_state=seed, stratify=labels
    )
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    return DigitsSplit(
        train_levels=levels[train_index],
        train_labels=labels[train_index],
        train_index=train_index,
        test_levels=levels[test_index],
        test_labels=labels[test_index],
        test_index=test_index,
    )


def levels_to_images(levels: np.ndarray | Tensor, *, levels_count: int = LEVELS) -> Tensor:
    """Grey levels (N, H, W) -> float images (N, 3, H, W) in [0, 1]."""
    grey = torch.as_tensor(np.asarray(levels), dtype=torch.float32) / (levels_count - 1)
    if grey.dim() != 3:
        raise ValueError(f"expected grey levels (N, H, W), got shape {tuple(grey.shape)}")
    return grey[:, None].expand(-1, 3, -1, -1).contiguous()
