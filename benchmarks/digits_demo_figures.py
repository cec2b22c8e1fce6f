"""Figures of the digits demo bundle: classifier accuracy, FIDs of three strategies, timing.

    .venv/bin/python benchmarks/digits_demo_figures.py [--bundle bundles/digits_demo.yaml]
        [--n 2000] [--seeds 0 1 2] [--timing-n 1000] [--threads 2]

FID@n per strategy over the seeds (each seed = one torch.Generator for all sampling noise,
labels i % 10, batches of 250), then the wall time of one FID@timing-n evaluation of the
reference's initial 8-step schedule (median of five, after one warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nat_core.digits import balanced_fid, classifier_accuracy, demo_strategies, split_digits
from nat_core.pipeline import load_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "digits_demo.yaml")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timing-n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bundle = load_bundle(args.bundle)
    split = split_digits()
    accuracy = classifier_accuracy(bundle.features.classifier, split.test_levels, split.test_labels)
    print(f"bundle {args.bundle} on {torch.get_num_threads()} threads")
    print(f"classifier held-out accuracy: {accuracy:.4f} ({len(split.test_labels)} digits)")

    strategies = demo_strategies(8)
    print(f"\nFID@{args.n}, seeds {args.seeds}:")
    for name, strategy in strategies.items():
        values = [
            balanced_fid(bundle, strategy, n=args.n, seed=seed, batch_size=args.batch_size)
            for seed in args.seeds
        ]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:8s} mean {statistics.mean(values):7.2f}  sd {spread:5.2f}  ({listed})")

    initial = strategies["initial"]
    balanced_fid(bundle, initial, n=args.timing_n, batch_size=args.batch_size)
    times = []
    for seed in range(5):
        start = time.perf_counter()
        balanced_fid(bundle, initial, n=args.timing_n, seed=seed, batch_size=args.batch_size)
        times.append(time.perf_counter() - start)
    print(
        f"\none FID@{args.timing_n} of the initial 8-step strategy: median "
        f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})"
    )


if __name__ == "__main__":
    main()
