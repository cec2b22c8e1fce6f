"""The digits demo's bundle parts: the pixel tokenizer and the classifier features.

Tokens are the pixel grey levels (17 levels, 8x8 = 64 tokens, codebook 17); FID is measured
in the penultimate layer of a small CNN digit classifier (``nat_core.digits.build`` trains
it). The demo bundle file names both classes by import path::

    tokenizer: {kind: nat_core.digits.models:PixelTokenizer, config: {levels: 17, size: 8}}
    features:  {kind: nat_core.digits.models:DigitFeatures, config: {...}, weights: ...}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nat_core.digits.data import LEVELS, NUM_CLASSES, SIDE, levels_to_images
from nat_core.fid import FeatureWeightsError

__all__ = [
    "CLASSIFIER_CHANNELS",
    "FEATURE_DIM",
    "DigitClassifier",
    "DigitFeatures",
    "PixelTokenizer",
    "classifier_accuracy",
]

FEATURE_DIM = 32
CLASSIFIER_CHANNELS = (32, 64)


# --------------------------------------------------------------------------- tokenizer


class PixelTokenizer(nn.Module):
    """Pixels as tokens: code = round(grey * (levels - 1)) of the channel mean."""

    # Digits are not mirror-symmetric: tokenizing a folder adds no flipped copies by default.
    add_mirrored_copies = False

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
