"""Frechet distance at 2048-d: ours (Cholesky form, float64, torch) against pytorch-fid's
``calculate_frechet_distance`` (scipy ``sqrtm``), in the same run.

Goal (SPEC section 8): >= 10x faster, same value to 1e-6 relative.

    .venv/bin/python benchmarks/bench_frechet.py [--dim 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from nat_core.fid import frechet_distance


def random_gaussian(
    rng: np.random.Generator, dim: int, samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``samples`` correlated features, like Inception statistics."""
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    feats = rng.standard_normal((samples, dim)) @ mixing + rng.uniform(0.0, 1.0, dim)
    return feats.mean(0), np.cov(feats, rowvar=False)


def timed(fn: Callable[..., float], inputs: tuple[np.ndarray, ...]) -> tuple[float, float]:
    start = time.perf_counter()
    value = float(fn(*inputs))
    return time.perf_counter() - start, value


def interleaved_best(
    inputs: tuple[np.ndarray, ...], repeats: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best-of timings (seconds, value) of ours and pytorch-fid's, alternated so that a
    change of machine load hits both."""
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(repeats):
        ours.append(timed(frechet_distance, inputs))
        theirs.append(timed(calculate_frechet_distance, inputs))
        ours.append(timed(frechet_distance, inputs))
    return min(ours), min(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="The `disp` argument", category=DeprecationWarning)

    rng = np.random.default_rng(args.seed)
    d = args.dim
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {load}, dim {d}, best of {args.repeats} (ours: {2 * args.repeats})"
    )

    cases = {
        "full-rank": (random_gaussian(rng, d, 2 * d), random_gaussian(rng, d, 3 * d)),
        "S1 singular (n = d/2)": (
            random_gaussian(rng, d, d // 2),
            random_gaussian(rng, d, 3 * d),
        ),
        "both singular": (random_gaussian(rng, d, d // 2), random_gaussian(rng, d, d // 2)),
    }
    for label, ((mu1, s1), (mu2, s2)) in cases.items():
        (ours_s, ours), (theirs_s, theirs) = interleaved_best((mu1, s1, mu2, s2), args.repeats)
        rel = abs(ours - theirs) / abs(theirs)
        print(
            f"frechet {d}-d {label}: ours {ours_s:.2f} s, pytorch-fid {theirs_s:.1f} s, "
            f"speed-up {theirs_s / ours_s:.1f}x (goal >= 10x), rel diff {rel:.1e} "
            f"(goal <= 1e-6); values {ours:.9f} / {theirs:.9f}"
        )


if __name__ == "__main__":
    main()
