"""The digits demo (SPEC 6): scikit-learn's bundled 8x8 handwritten digits as a NAT task.

Tokens are the pixel grey levels (17 levels, 8x8 = 64 tokens, codebook 17), classes are the
ten digits plus the null class 10, and FID is measured in the penultimate layer of a small
CNN digit classifier trained here. Everything runs on a CPU; nothing is downloaded
(``sklearn.datasets.load_digits`` ships with scikit-learn).

This module holds what a loaded bundle needs (``PixelTokenizer``, ``DigitFeatures``,
registered as the feature extractor "digits-classifier") and the data split;
``nat_core.digits_build.build_digits_demo`` trains and writes the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from nat_core.fid import FeatureWeightsError, register_feature_extractor
from nat_core.strategy import GenerationStrategy

if TYPE_CHECKING:
    from nat_core.pipeline import GeneratorBundle

LEVELS = 17  # load_digits grey levels 0..16
SIDE = 8
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.2
FEATURE_DIM = 32
CLASSIFIER_CHANNELS = (32, 64)


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- tokenizer


class PixelTokenizer(nn.Module):
    """Pixels as tokens: code = round(grey * (levels - 1)) of the channel mean."""

    def __init__(self, levels: int = LEVELS, size: int = SIDE) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an integer >= 1, got {size!r}")
        self.levels = levels
        self.size = size

    @property
    def codebook_size(self) -> int:
        return self.levels

    def encode(self, images: Tensor) -> Tensor:
        """Images (B, 3, size, size) in [0, 1] -> codes (B, size, size) int64."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.size, self.size):
            raise ValueError(
                f"expected images (B, 3, {self.size}, {self.size}), got {tuple(images.shape)}"
            )
        grey = images.float().mean(dim=1).clamp(0.0, 1.0)
        return torch.round(grey * (self.levels - 1)).long()

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (B, size, size) -> images (B, 3, size, size) in [0, 1]."""
        if codes.dim() != 3 or tuple(codes.shape[1:]) != (self.size, self.size):
            raise ValueError(
                f"expected codes (B, {self.size}, {self.size}), got {tuple(codes.shape)}"
            )
        grey = codes.float() / (self.levels - 1)
        return grey[:, None].expand(-1, 3, -1, -1)


# --------------------------------------------------------------------------- classifier


class DigitClassifier(nn.Module):
    """Two 3x3 convs, a 2x2 max-pool, a linear layer to ``feature_dim`` (the features),
    ReLU and a linear head to the ten classes. Takes images (B, 3, 8, 8) in [0, 1]."""

    def __init__(
        self,
        *,
        channels: tuple[int, int] | list[int] = CLASSIFIER_CHANNELS,
        feature_dim: int = FEATURE_DIM,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        if len(channels) != 2 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be two positive integers, got {channels!r}")
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        c1, c2 = (int(c) for c in channels)
        self.feature_dim = feature_dim
        self.convs = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(c2 * (SIDE // 2) ** 2, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: Tensor) -> Tensor:
        """Penultimate-layer activations before the ReLU: (B, feature_dim)."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, SIDE, SIDE):
            raise ValueError(f"expected images (B, 3, {SIDE}, {SIDE}), got {tuple(images.shape)}")
        grey = images.float().mean(dim=1, keepdim=True) * 2.0 - 1.0
        return self.fc(self.convs(grey))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(torch.relu(self.features(images)))


class DigitFeatures(nn.Module):
    """The "digits-classifier" feature extractor: images (B, 3, 8, 8) in [0, 1] ->
    the classifier's penultimate features (B, feature_dim)."""

    def __init__(
        self,
        *,
        weights_path: str | Path,
        channels: tuple[int, int] | list[int] = CLASSIFIER_CHANNELS,
        feature_dim: int = FEATURE_DIM,
    ) -> None:
        super().__init__()
        path = Path(weights_path).expanduser()
        self.classifier = DigitClassifier(channels=channels, feature_dim=feature_dim)
        if not path.is_file():
            raise FeatureWeightsError(
                f"digit classifier weights not found: {path}; regenerate them with "
                "`autonat-search build-digits-demo`"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.classifier.load_state_dict(state, strict=True)
        except Exception as error:
            raise FeatureWeightsError(
                f"digit classifier weights {path} do not fit channels {list(channels)}, "
                f"feature_dim {feature_dim}: {error}"
            ) from None
        self.feature_dim = feature_dim
        self.weights_path = path
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images)


register_feature_extractor("digits-classifier", DigitFeatures)


@torch.no_grad()
def classifier_accuracy(
    classifier: nn.Module, levels: np.ndarray, labels: np.ndarray, *, batch_size: int = 512
) -> float:
    """Fraction of digits (grey levels (N, 8, 8)) that ``classifier`` labels correctly."""
    was_training = classifier.training
    classifier.eval()
    images, targets = levels_to_images(levels), torch.as_tensor(labels)
    correct = 0
    for start in range(0, len(targets), batch_size):
        logits = classifier(images[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == targets[start : start + batch_size]).sum())
    classifier.train(was_training)
    return correct / len(targets)


# --------------------------------------------------------------------------- demo strategies


def demo_strategies(steps: int = 8) -> dict[str, GenerationStrategy]:
    """Three reference points for the demo bundle: "initial", the reference's initial
    schedule; "bad", every token decided in the first step and sampled at temperature 3;
    "decent", the initial schedule with re-mask temperature 3 at every step (found by hand:
    FID@1000 about 7 against 17 for the initial one)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    initial = GenerationStrategy.reference_initial(steps)
    bad = GenerationStrategy(
        mask_ratios=[0.0] * (steps - 1),
        remask_temps=[0.0] * (steps - 1),
        sample_temps=[3.0] * steps,
        cfg_scales=[0.0] * steps,
    )
    decent = GenerationStrategy(
        mask_ratios=initial.mask_ratios,
        remask_temps=[3.0] * (steps - 1),
        sample_temps=initial.sample_temps,
        cfg_scales=initial.cfg_scales,
    )
    return {"initial": initial, "bad": bad, "decent": decent}


def balanced_fid(
    bundle: GeneratorBundle,
    strategy: GenerationStrategy,
    *,
    n: int = 1000,
    seed: int = 0,
    batch_size: int = 250,
) -> float:
    """FID@n of ``strategy`` with labels ``i % classes`` and one generator seeded ``seed``
    drawing all sampling noise, batch after batch."""
    if n < 2 or batch_size < 1 or n % batch_size:
        raise ValueError(f"n must be a multiple of batch_size and >= 2, got {n} and {batch_size}")
    generator = torch.Generator(device=bundle.device).manual_seed(seed)
    stats = bundle.empty_stats()
    for start in range(0, n, batch_size):
        labels = torch.arange(start, start + batch_size, device=bundle.device)
        stats.update(bundle.sample_features(strategy, labels % bundle.spec.classes, generator))
    return bundle.fid(stats)
