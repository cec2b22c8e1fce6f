"""The parts of gpu_check.py that are not stages: sizes, timing and memory bookkeeping, the
card's peak, the feature network (pytorch-fid's, or torchvision's architecture where
pytorch-fid is missing), float64 statistics and the Frechet distance's time."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from bench_common import AUTONAT_L, synchronize, timed
from torch import Tensor, nn

from nat_core.vqgan import VQGAN_CONFIGS

PIPELINE_GFLOP_PER_IMAGE = 1928.0
FID_SAMPLES = 50_000
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), from NVIDIA's data sheets.
BF16_DENSE_PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.5), ("H100", 989.4), ("A100", 312.0))
TINY_NAT: dict[str, Any] = dict(
    img_size=4,
    codebook_size=16,
    embed_dim=32,
    depth=2,
    num_heads=2,
    mlp_ratio=2,
    qkv_bias=False,
    num_classes=5,
    skip=True,
)
TINY_VQGAN: dict[str, Any] = dict(
    ddconfig=dict(
        z_channels=32, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 2], num_res_blocks=1
    ),
    n_embed=16,
    embed_dim=32,
)


@dataclass
class Run:
    device: torch.device
    deadline: float
    failures: list[str] = field(default_factory=list)

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one stage; a failure or a spent time budget is printed, not raised."""
        if time.perf_counter() > self.deadline:
            print(f"skipped {name}: time budget spent", flush=True)
            return None
        try:
            return fn()
        except Exception as error:  # one broken stage must not cost the rest of the run
            self.failures.append(name)
            print(f"FAILED {name}: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
            return None


@contextlib.contextmanager
def peak_memory(device: torch.device, into: list[str]) -> Iterator[None]:
    """Appends the peak memory allocated inside the block to ``into``."""
    if device.type != "cuda":
        yield
        into.append("n/a (CPU)")
        return
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield
    synchronize(device)
    into.append(f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")


def card_peak(name: str) -> float | None:
    for key, peak in BF16_DENSE_PEAK_TFLOPS:
        if all(part in name for part in key.split()):
            return peak
    return None


def matmul_tflops(device: torch.device, n: int, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    seconds, _ = timed(lambda: [a @ b for _ in range(repeats)], device)
    return 2 * n**3 * repeats / seconds / 1e12


def build_features(which: str, device: torch.device) -> tuple[nn.Module, str]:
    """pytorch-fid's FID InceptionV3 (through nat_core.fid) with random weights, or
    torchvision's inception_v3 architecture where pytorch-fid is missing (timing only)."""
    try:
        import pytorch_fid  # noqa: F401

        has_pytorch_fid = True
    except ImportError:
        has_pytorch_fid = False
    if which == "pytorch-fid" or (which == "auto" and has_pytorch_fid):
        from nat_core.fid import InceptionFeatures, build_fid_inception_network

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "random_inception.pth"
            torch.save(build_fid_inception_network().state_dict(), path)
            features = InceptionFeatures(weights_path=path)
        return features.to(device), "pytorch-fid FID InceptionV3 (nat_core.fid), random weights"
    return TorchvisionInception().to(device), (
        "torchvision inception_v3 architecture, random weights: TIMING ONLY, pytorch-fid is "
        "not installed here (its FID blocks differ in pooling, not in FLOPs)"
    )


class TorchvisionInception(nn.Module):
    """pytorch-fid's preprocessing (resize to 299, [-1, 1]) around torchvision's
    inception_v3 up to its 2048-d pool features."""

    feature_dim = 2048

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.net = torchvision.models.inception_v3(
            weights=None, aux_logits=False, init_weights=False, transform_input=False
        )
        self.net.fc = nn.Identity()
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        x = nn.functional.interpolate(images, size=(299, 299), mode="bilinear")
        return self.net(2 * x - 1)


class Float64Stats:
    """Count, float64 sum and sum of outer products (FeatureStats where nat_core.fid cannot
    be imported)."""

    def __init__(self, dim: int, device: torch.device) -> None:
        try:
            from nat_core.fid import FeatureStats

            self.stats: Any = FeatureStats.empty(dim, device=device)
        except ImportError:
            self.stats = None
            self.count = 0
            self.total = torch.zeros(dim, dtype=torch.float64, device=device)
            self.outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def update(self, features: Tensor) -> None:
        if self.stats is not None:
            self.stats.update(features)
            return
        f = features.double()
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.outer.addmm_(f.mT, f)


def frechet_seconds(device: torch.device, dim: int = 2048) -> str:
    try:
        from nat_core.fid import frechet_distance
    except ImportError as error:
        return f"not timed ({error})"
    generator = torch.Generator().manual_seed(0)
    mixes = [torch.randn(dim, 2 * dim, generator=generator, dtype=torch.float64) for _ in "ab"]
    sigmas = [(m @ m.T / (2 * dim)).to(device) for m in mixes]
    mu = torch.zeros(dim, dtype=torch.float64, device=device)
    seconds, _ = timed(lambda: frechet_distance(mu, sigmas[0], mu, sigmas[1]), device)
    return f"{seconds:.3f}"


@dataclass(frozen=True)
class Sizes:
    nat: dict[str, Any]
    vqgan: dict[str, Any]
    classes: int
    batch: int
    chunk: int
    repeats: int
    decode_batches: tuple[int, ...]
    compiled_decode_batches: tuple[int, ...]
    pipeline_decode_batch: int
    pipeline_batches: int
    matmul_n: int


def choose_sizes(args: argparse.Namespace) -> Sizes:
    if args.smoke:
        return Sizes(TINY_NAT, TINY_VQGAN, 4, 2, 1, 1, (1, 2), (1,), 1, 2, 256)
    vqgan = VQGAN_CONFIGS["vqgan-f16-1024"]
    return Sizes(
        nat=AUTONAT_L,
        vqgan=dict(
            ddconfig=vqgan["ddconfig"], n_embed=vqgan["n_embed"], embed_dim=vqgan["embed_dim"]
        ),
        classes=1000,
        batch=args.batch,
        chunk=args.batch // 2,
        repeats=args.repeats,
        decode_batches=(25, 50, 125, args.batch),
        compiled_decode_batches=(50, 125),
        pipeline_decode_batch=50,
        pipeline_batches=4,
        matmul_n=8192,
    )
