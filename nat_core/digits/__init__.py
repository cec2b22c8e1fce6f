"""The digits demo (SPEC 6): scikit-learn's bundled 8x8 handwritten digits as a NAT task.

Tokens are the pixel grey levels (17 levels, 8x8 = 64 tokens, codebook 17), classes are the
ten digits plus the null class 10, and FID is measured in the penultimate layer of a small
CNN digit classifier. Everything runs on a CPU; nothing is downloaded.

- ``nat_core.digits.data``: the digits as grey levels and the fixed train / held-out split.
- ``nat_core.digits.models``: ``PixelTokenizer`` and ``DigitFeatures``, the two bundle parts
  that ``bundles/digits_demo.yaml`` names by import path.
- ``nat_core.digits.figures``: the demo's reference strategies and its balanced FID.
- ``nat_core.digits.build``: ``build_digits_demo`` trains the classifier and the NAT and
  writes the bundle (imported on first use: it pulls in the training code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nat_core.digits.data import DigitsSplit, levels_to_images, load_digit_levels, split_digits
from nat_core.digits.figures import balanced_fid, demo_strategies
from nat_core.digits.models import (
    DigitClassifier,
    DigitFeatures,
    PixelTokenizer,
    classifier_accuracy,
)

if TYPE_CHECKING:
    from nat_core.digits.build import build_digits_demo

__all__ = [
    "DigitClassifier",
    "DigitFeatures",
    "DigitsSplit",
    "PixelTokenizer",
    "balanced_fid",
    "build_digits_demo",
    "classifier_accuracy",
    "demo_strategies",
    "levels_to_images",
    "load_digit_levels",
    "split_digits",
]


def __getattr__(name: str) -> Any:
    if name == "build_digits_demo":
        from nat_core.digits.build import build_digits_demo

        return build_digits_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
