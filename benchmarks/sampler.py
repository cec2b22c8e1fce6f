"""Our decoding loop against the reference-style loop, on the CPU, in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/sampler.py [--repeats 5] [--large-repeats 3]
        [--digits-batches 50 250] [--large-batch 1] [--skip-large] [--no-compile]
        [--compile-large] [--threads N]

Same weights, same strategy, same batch, the loops alternated so that a change of machine
load hits all of them. Ours: one batched guidance pass (the unconditional half skipped where
w = 0), Gumbel noise drawn on the device from the caller's generator, ``kthvalue``, SDPA
attention; also the same loop on the model compiled by ``torch.compile`` (inductor's C++
kernels; compile time printed, not counted). The reference-style loop
(``reference_loop.py``): two sequential passes, host-side numpy Gumbel noise, full sort,
plain attention (SPEC 8). Models: the digits-demo NAT (bundles/digits_demo.yaml) and an
AutoNAT-L-shaped NAT with random weights. Strategies: the published AutoNAT-L T=8 strategy
and the same with its first three guidance scales exactly 0. Goals (SPEC 8): >= 1.25x and
>= 1.5x images/s. Each speed-up is the ratio of medians, with the range of per-repeat ratios.

Then the exactness check: with deterministic decoding (sampling temperature 1e-4, re-mask
temperature 0, float64) both loops must give the same tokens, on the case of
tests/reference/nat_parity.pt (weights with clear margins; its tokens are the reference's
own) and on each benchmarked model.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from bench_common import (
    AUTONAT_L,
    REPO_ROOT,
    median_and_spread,
    published_strategy,
    random_nat,
    timed,
    zeros_first_three,
)
from reference_loop import reference_style_tokens

from nat_core.bundle import build_component, read_bundle
from nat_core.compiled import CompiledModule
from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.sampler import generate_tokens
from nat_core.strategy import GenerationStrategy

CPU = torch.device("cpu")


@dataclasses.dataclass
class Case:
    name: str
    model: NATransformer
    seq_len: int
    mask_id: int
    null_label: int
    classes: int
    compiled: CompiledModule | None = None


def _ours(
    case: Case,
    strategy: GenerationStrategy,
    labels: torch.Tensor,
    seed: int,
    compiled: bool = False,
) -> Any:
    case.model.set_attention("sdpa")
    return generate_tokens(
        case.compiled if compiled else case.model,
        strategy,
        labels,
        seq_len=case.seq_len,
        mask_id=case.mask_id,
        null_label=case.null_label,
        generator=torch.Generator().manual_seed(seed),
    )


def _reference(case: Case, strategy: GenerationStrategy, labels: torch.Tensor, seed: int) -> Any:
    case.model.set_attention("math")
    return reference_style_tokens(
        case.model,
        strategy,
        labels,
        seq_len=case.seq_len,
        mask_id=case.mask_id,
        null_label=case.null_label,
        generator=torch.Generator().manual_seed(seed),
        host_rng=np.random.default_rng(seed),
    )


def compare_speed(case: Case, strategy: GenerationStrategy, label: str, batch: int, repeats: int):
    labels = torch.arange(batch) % case.classes
    loops: dict[str, Callable[[int], Any]] = {
        "ours": lambda seed: _ours(case, strategy, labels, seed),
        "reference-style": lambda seed: _reference(case, strategy, labels, seed),
    }
    if case.compiled is not None:
        loops["ours compiled"] = lambda seed: _ours(case, strategy, labels, seed, compiled=True)
        compile_before = case.compiled.total_compile_seconds
    for loop in loops.values():  # warm-up (and compilation)
        loop(0)
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(1, repeats + 1):
        for name, loop in loops.items():
            seconds[name].append(timed(lambda r=repeat, f=loop: f(r), CPU)[0])
    reference = seconds["reference-style"]
    r_med = median_and_spread(reference)[0]
    parts = []
    for name, values in seconds.items():
        med, low, high = median_and_spread(values)
        part = f"{name} {batch / med:.2f} images/s (median {med:.3f} s, {low:.3f}-{high:.3f})"
        if name != "reference-style":
            ratios = sorted(r / v for r, v in zip(reference, values, strict=True))
            part += f" = {r_med / med:.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}]"
        parts.append(part)
    print(f"{case.name} | {label} | batch {batch} | " + " | ".join(parts), flush=True)
    if case.compiled is not None and case.compiled.total_compile_seconds > compile_before:
        spent = case.compiled.total_compile_seconds - compile_before
        print(f"  (compiling for this batch took {spent:.1f} s, not counted)", flush=True)


def deterministic(strategy: GenerationStrategy) -> GenerationStrategy:
    return dataclasses.replace(
        strategy,
        sample_temps=(1e-4,) * strategy.steps,
        remask_temps=(0.0,) * (strategy.steps - 1),
    )


@torch.no_grad()
def check_same_tokens(
    case: Case, strategy: GenerationStrategy, labels: torch.Tensor, expected: Any = None
) -> None:
    original = case.model
    case.model = copy.deepcopy(original).double()
    try:
        ours = _ours(case, strategy, labels, 1)
        theirs = _reference(case, strategy, labels, 2)  # other seeds: the noise must not matter
    finally:
        case.model = original
    line = (
        f"exactness {case.name:<10} float64, sample temp 1e-4, re-mask temp 0: "
        f"ours == reference-style: {torch.equal(ours, theirs)} "
        f"({int((ours != theirs).sum())} of {ours.numel()} tokens differ)"
    )
    if expected is not None:
        line += (
            f"; ours == reference's own tokens: {torch.equal(ours, expected)}, "
            f"reference-style == reference's own tokens: {torch.equal(theirs, expected)}"
        )
    print(line, flush=True)


def parity_case() -> tuple[Case, GenerationStrategy, torch.Tensor, torch.Tensor]:
    parity = torch.load(REPO_ROOT / "tests/reference/nat_parity.pt", weights_only=True)
    model = NATransformer(**parity["config"]).eval()
    load_nat_checkpoint(model, parity["state_dict"])
    case = Case("parity", model, 256, parity["config"]["codebook_size"], parity["null_class"], 10)
    strategy = GenerationStrategy.from_reference_dict(parity["strategy"])
    return case, strategy, parity["labels"][:, 0], parity["generated_tokens"]


def digits_case() -> Case:
    spec = read_bundle(REPO_ROOT / "bundles" / "digits_demo.yaml")
    model = build_component(spec.model, "model")
    return Case("digits", model, spec.seq_len, model.mask_id, spec.null_class, spec.classes)


def large_case() -> Case:
    model = random_nat(AUTONAT_L)
    return Case("AutoNAT-L", model, model.seq_len, model.mask_id, 1000, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per loop (digits)")
    parser.add_argument("--large-repeats", type=int, default=3, help="timed runs (AutoNAT-L)")
    parser.add_argument("--digits-batches", type=int, nargs="+", default=[50, 250])
    parser.add_argument("--large-batch", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true", help="digits and parity only")
    parser.add_argument("--exactness-only", action="store_true", help="no speed comparison")
    parser.add_argument("--no-compile", action="store_true", help="no compiled column")
    parser.add_argument("--compile-large", action="store_true", help="compile AutoNAT-L too")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print(
        f"sampler benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    published = published_strategy()
    strategies = [("published", published), ("first three w = 0", zeros_first_three(published))]
    digits = digits_case()
    if not args.no_compile:
        digits.compiled = CompiledModule(digits.model)
    cases = [(digits, batch, args.repeats) for batch in args.digits_batches]
    if not args.skip_large:
        large = large_case()
        if args.compile_large and not args.no_compile:
            large.compiled = CompiledModule(large.model)
        cases.append((large, args.large_batch, args.large_repeats))
    for case, batch, repeats in [] if args.exactness_only else cases:
        for label, strategy in strategies:
            compare_speed(case, strategy, label, batch, repeats)
    parity, strategy, labels, expected = parity_case()
    check_same_tokens(parity, strategy, labels, expected)
    for case in {id(case): case for case, _, _ in cases}.values():
        # One sequence of AutoNAT-L in float64 already takes minutes on two cores.
        labels = torch.arange(8 if case.name == "digits" else 1) % case.classes
        check_same_tokens(case, deterministic(published), labels)
    print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
