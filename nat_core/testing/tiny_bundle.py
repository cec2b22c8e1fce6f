"""A tiny random-weight bundle with the real VQGAN and FID-Inception architectures.

Its weights are written on demand (the Inception file alone is ~95 MB, so it is not
committed): ``write_tiny_bundle(folder)`` returns the bundle file. It exercises the whole
image path (tokens -> VQGAN decode -> resize -> Inception -> FID) on a CPU in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from nat_core.fid import (
    INCEPTION_WEIGHTS_FILENAME,
    InceptionFeatures,
    build_fid_inception_network,
    save_reference_stats,
    stats_from_images,
)
from nat_core.model import NATransformer
from nat_core.vqgan import VQGAN
from nat_core.weights import randomize

__all__ = ["TINY_CLASSES", "TINY_NAT", "TINY_VQGAN", "write_tiny_bundle"]

TINY_CLASSES = 4
TINY_NAT: dict[str, Any] = dict(
    img_size=4,
    codebook_size=16,
    embed_dim=32,
    depth=2,
    num_heads=2,
    mlp_ratio=2,
    qkv_bias=False,
    num_classes=TINY_CLASSES + 1,
    skip=True,
)
TINY_VQGAN: dict[str, Any] = dict(
    ddconfig=dict(
        double_z=False,
        z_channels=32,
        resolution=16,
        in_channels=3,
        out_ch=3,
        ch=32,
        ch_mult=[1, 1, 2],
        num_res_blocks=1,
        attn_resolutions=[],
        dropout=0.0,
    ),
    n_embed=16,
    embed_dim=32,
)


@torch.no_grad()
def write_tiny_bundle(folder: str | Path, *, seed: int = 0, reference_samples: int = 64) -> Path:
    """Write random weights, reference statistics and ``tiny.yaml`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    nat = NATransformer(**TINY_NAT)
    vqgan = VQGAN(**TINY_VQGAN)
    inception = build_fid_inception_network()
    for module in (nat, vqgan, inception):
        randomize(module, generator)
    torch.save(nat.state_dict(), folder / "nnet_ema.pth")
    torch.save({"state_dict": vqgan.state_dict()}, folder / "vqgan.ckpt")
    torch.save(inception.state_dict(), folder / INCEPTION_WEIGHTS_FILENAME)

    features = InceptionFeatures(weights_path=folder / INCEPTION_WEIGHTS_FILENAME)
    side = TINY_NAT["img_size"]
    codes = torch.randint(
        0, TINY_VQGAN["n_embed"], (reference_samples, side, side), generator=generator
    )
    with torch.no_grad():
        images = vqgan.decode(codes).clamp(0, 1)
    stats = stats_from_images([images], features, device="cpu")
    save_reference_stats(folder / "fid_stats.npz", stats.mean(), stats.covariance())

    bundle = {
        "name": "tiny-random",
        "classes": TINY_CLASSES,
        "null_class": TINY_CLASSES,
        "tokens_per_side": side,
        "model": {"config": TINY_NAT, "checkpoint": "nnet_ema.pth"},
        "tokenizer": {"kind": "vqgan", "config": TINY_VQGAN, "checkpoint": "vqgan.ckpt"},
        "features": {"kind": "inception-v3-fid", "weights": INCEPTION_WEIGHTS_FILENAME},
        "reference_stats": "fid_stats.npz",
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(bundle, sort_keys=False))
    return path
