"""Regenerating the digits demo bundle: classifier, token dataset, NAT, reference statistics.

    autonat-search build-digits-demo [-o bundles/] [--quick]

calls ``build_digits_demo(out_dir)``, which writes ``{out_dir}/digits_demo.yaml`` and its
files under ``{out_dir}/digits_demo/``: ``nnet_ema.pth`` (the NAT's EMA weights),
``classifier.pth`` (the digit classifier), ``fid_stats.npz`` (features of the held-out
digits) and ``pretrain_config.yaml`` (the NAT's training config, a record). Every random
draw is seeded from ``seed``, so a rebuild on the same software gives the same files.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor
from tqdm.auto import tqdm

from nat_core.data import write_token_dataset
from nat_core.digits.data import (
    LEVELS,
    NULL_CLASS,
    NUM_CLASSES,
    SIDE,
    levels_to_images,
    split_digits,
)
from nat_core.digits.models import (
    CLASSIFIER_CHANNELS,
    FEATURE_DIM,
    DigitClassifier,
    DigitFeatures,
    PixelTokenizer,
    classifier_accuracy,
)
from nat_core.fid import save_reference_stats, stats_from_images
from nat_core.seeding import derive_seed
from nat_core.train import pretrain
from nat_core.weights import randomize

__all__ = ["FULL", "QUICK", "DigitsDemoSizes", "build_digits_demo", "train_classifier"]

logger = logging.getLogger(__name__)

BUNDLE_NAME = "digits-demo"
BUNDLE_FILE = "digits_demo.yaml"
BUNDLE_FOLDER = "digits_demo"


@dataclass(frozen=True)
class DigitsDemoSizes:
    """Model sizes and training lengths of one build."""

    nat: dict[str, Any]
    nat_steps: int
    nat_batch_size: int
    nat_lr: float
    nat_warmup_steps: int
    nat_ema: float
    nat_betas: tuple[float, float] = (0.9, 0.99)
    classifier_channels: tuple[int, int] = CLASSIFIER_CHANNELS
    feature_dim: int = FEATURE_DIM
    classifier_steps: int = 600
    classifier_batch_size: int = 128
    classifier_lr: float = 2e-3


def _nat_config(embed_dim: int, depth: int, num_heads: int, mlp_ratio: float) -> dict[str, Any]:
    return dict(
        img_size=SIDE,
        codebook_size=LEVELS,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=False,
        num_classes=NUM_CLASSES + 1,
        skip=True,
    )


FULL = DigitsDemoSizes(
    nat=_nat_config(24, 2, 1, 2),
    nat_steps=8000,
    nat_batch_size=128,
    nat_lr=3e-3,
    nat_warmup_steps=100,
    nat_ema=0.999,
)
QUICK = DigitsDemoSizes(
    nat=_nat_config(16, 2, 1, 2),
    nat_steps=20,
    nat_batch_size=64,
    nat_lr=1e-3,
    nat_warmup_steps=5,
    nat_ema=0.9,
    classifier_channels=(4, 8),
    feature_dim=8,
    classifier_steps=30,
)


def _shifted(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each image moved by up to one pixel in each direction (zeros shift in)."""
    b, _, h, w = images.shape
    padded = F.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (b,), generator=generator)
    dx = torch.randint(0, 3, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    batch = torch.arange(b)[:, None, None, None]
    channel = torch.arange(images.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


def train_classifier(
    levels: np.ndarray,
    labels: np.ndarray,
    *,
    generator: torch.Generator,
    channels: tuple[int, int] = CLASSIFIER_CHANNELS,
    feature_dim: int = FEATURE_DIM,
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 2e-3,
    progress: bool = False,
) -> DigitClassifier:
    """A digit classifier trained with AdamW on one-pixel random shifts of the digits.
    Weights, batches and shifts all come from ``generator``."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    model = DigitClassifier(channels=channels, feature_dim=feature_dim)
    randomize(model, generator)
    images, targets = levels_to_images(levels), torch.as_tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    order = torch.randperm(len(targets), generator=generator)
    cursor = 0
    for _ in tqdm(range(steps), disable=not progress, desc="classifier", unit="step"):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(targets), generator=generator), 0
        index = order[cursor : cursor + batch_size]
        cursor += batch_size
        loss = F.cross_entropy(model(_shifted(images[index], generator)), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval().requires_grad_(False)


def _pretrain_config(sizes: DigitsDemoSizes, seed: int, dataset_path: str) -> dict[str, Any]:
    return {
        "train": {
            "n_steps": sizes.nat_steps,
            "batch_size": sizes.nat_batch_size,
            "log_interval": max(1, sizes.nat_steps // 20),
            "save_interval": sizes.nat_steps,
            "ema": sizes.nat_ema,
            "seed": seed,
            "num_workers": 0,
        },
        "optimizer": {
            "name": "adamw",
            "lr": sizes.nat_lr,
            "weight_decay": 0.03,
            "betas": list(sizes.nat_betas),
        },
        "lr_scheduler": {"name": "customized", "warmup_steps": sizes.nat_warmup_steps},
        "nnet": dict(sizes.nat),
        "muse": {"ignore_ind": -1, "smoothing": 0.1},
        "dataset": {
            "name": "digits8x8_tokens",
            "path": dataset_path,
            "cfg": True,
            "p_uncond": 0.15,
            "null_class": NULL_CLASS,
        },
    }


def _reference_stats(features: DigitFeatures, levels: np.ndarray) -> tuple[Tensor, Tensor]:
    stats = stats_from_images([levels_to_images(levels)], features, device="cpu")
    return stats.mean(), stats.covariance()


def build_digits_demo(
    out_dir: str | Path,
    *,
    quick: bool = False,
    progress: bool = True,
    seed: int = 0,
    threads: int | None = None,
) -> Path:
    """Train the classifier and the NAT, write the demo bundle; returns the bundle file.

    ``quick`` trains tiny models for a few steps (for tests; the bundle loads and runs but
    its FIDs mean nothing). ``threads`` sets torch's CPU threads for the build only.
    """
    sizes = QUICK if quick else FULL
    out = Path(out_dir).expanduser()
    folder = out / BUNDLE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        split = split_digits()
        generator = torch.Generator().manual_seed(derive_seed(seed, "classifier"))
        classifier = train_classifier(
            split.train_levels,
            split.train_labels,
            generator=generator,
            channels=sizes.classifier_channels,
            feature_dim=sizes.feature_dim,
            steps=sizes.classifier_steps,
            batch_size=sizes.classifier_batch_size,
            lr=sizes.classifier_lr,
            progress=progress,
        )
        accuracy = classifier_accuracy(classifier, split.test_levels, split.test_labels)
        logger.info("digit classifier: held-out accuracy %.4f", accuracy)
        classifier_path = folder / "classifier.pth"
        torch.save(classifier.state_dict(), classifier_path)
        features = DigitFeatures(
            weights_path=classifier_path,
            channels=sizes.classifier_channels,
            feature_dim=sizes.feature_dim,
        )
        mu, sigma = _reference_stats(features, split.test_levels)
        save_reference_stats(folder / "fid_stats.npz", mu, sigma)

        tokenizer = PixelTokenizer(LEVELS, SIDE)
        codes = tokenizer.encode(levels_to_images(split.train_levels)).reshape(
            len(split.train_labels), -1
        )
        rows = np.concatenate([split.train_labels[:, None], codes.numpy()], axis=1)
        config = _pretrain_config(sizes, seed, "train_tokens.npy")
        (folder / "pretrain_config.yaml").write_text(
            "# The NAT's pretraining config; build-digits-demo writes train_tokens.npy (the\n"
            "# token rows of the training split) into a temporary folder and trains there.\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
        with tempfile.TemporaryDirectory(prefix="digits_demo_") as work:
            tokens = write_token_dataset(Path(work) / "train_tokens.npy", rows)
            pretrain(
                _pretrain_config(sizes, seed, str(tokens)),
                out_dir=Path(work) / "run",
                resume=False,
                device="cpu",
                progress=progress,
                ema_path=folder / "nnet_ema.pth",
            )
        bundle = {
            "name": BUNDLE_NAME + ("-quick" if quick else ""),
            "classes": NUM_CLASSES,
            "null_class": NULL_CLASS,
            "tokens_per_side": SIDE,
            "model": {
                "class": "nat_core.model:NATransformer",
                "config": dict(sizes.nat),
                "checkpoint": f"{BUNDLE_FOLDER}/nnet_ema.pth",
            },
            "tokenizer": {
                "kind": f"{PixelTokenizer.__module__}:{PixelTokenizer.__qualname__}",
                "config": {"levels": LEVELS, "size": SIDE},
            },
            "features": {
                "kind": f"{DigitFeatures.__module__}:{DigitFeatures.__qualname__}",
                "config": {
                    "channels": list(sizes.classifier_channels),
                    "feature_dim": sizes.feature_dim,
                },
                "weights": f"{BUNDLE_FOLDER}/classifier.pth",
            },
            "reference_stats": f"{BUNDLE_FOLDER}/fid_stats.npz",
        }
        header = (
            f"# The digits demo bundle, written by `autonat-search build-digits-demo"
            f"{' --quick' if quick else ''}` (seed {seed}).\n"
            f"# Digit classifier held-out accuracy: {accuracy:.4f} "
            f"({len(split.test_labels)} held-out digits).\n"
        )
        path = out / BUNDLE_FILE
        path.write_text(header + yaml.safe_dump(bundle, sort_keys=False))
        logger.info(
            "digits demo bundle written to %s in %.0f s", path, time.perf_counter() - started
        )
        return path
    finally:
        torch.set_num_threads(previous_threads)
