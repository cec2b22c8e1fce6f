"""Images in class folders -> a token dataset, encoded by a bundle's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nat_core.bundle import build_component, read_bundle, token_encoder
from nat_core.data import tokenize_image_folder

__all__ = ["tokenize_with_bundle"]


def tokenize_with_bundle(
    images_dir: str | Path,
    bundle: str | Path,
    *,
    size: int | None = None,
    batch_size: int = 64,
    flip: bool | None = None,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Token rows (N, 1 + L) int64 of the class folders under ``images_dir`` (labels in
    folder name order), encoded by the tokenizer of ``bundle``.

    ``size`` is the centre-crop size (default: the bundle's image size, tokens per side
    times the tokenizer's ``downsample_factor``). ``flip`` adds horizontally mirrored
    copies; by default it does unless the tokenizer sets ``add_mirrored_copies = False``
    (the digits' pixel tokenizer: digits are not mirror-symmetric). ``device`` defaults to
    CUDA when there is one."""
    spec = read_bundle(bundle)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = build_component(spec.tokenizer, "tokenizer").to(dev)
    encoder = token_encoder(tokenizer, spec.tokenizer.kind)
    factor = int(getattr(tokenizer, "downsample_factor", 1))
    crop = size or spec.tokens_per_side * factor
    first = next(tokenizer.parameters(), torch.empty(0))

    @torch.inference_mode()
    def encode(images: torch.Tensor) -> torch.Tensor:
        return encoder.encode(images.to(first.device)).cpu()

    if flip is None:
        flip = bool(getattr(tokenizer, "add_mirrored_copies", True))
    return tokenize_image_folder(
        images_dir, encode, size=crop, batch_size=batch_size, flip=flip, progress=progress
    )
