"""The evaluation pipeline's speed on one GPU, stage by stage, in one prepared run.

    PYTHONPATH=. python3 benchmarks/gpu_check.py            # a GPU machine, about 3-5 minutes
    PYTHONPATH=. python benchmarks/gpu_check.py --smoke     # CPU, tiny sizes: checks the script

Random weights at the real sizes (AutoNAT-L, the VQGAN f16 tokenizer, pytorch-fid's FID
InceptionV3), nothing downloaded; imports nat_core (never nat_core.pipeline, which needs
pytorch-fid) and the sibling benchmark helpers only. Where pytorch-fid is not installed the
Inception stage times torchvision's inception_v3 architecture instead (said in the output).

Prints, in one run: the card, a plain bf16 matmul rate and the card's bf16 dense peak; the
decoding loop eager, compiled (compile time), compiled with the first three guidance scales
exactly 0, and the reference-style loop as the reference runs it (fp16 autocast, two passes,
host numpy Gumbel noise, full sort, the best attention kernel installed); token agreement
compiled vs eager in bf16; VQGAN decode eager and channels-last + compiled per decode
micro-batch size with peak memory; Inception in fp32; the whole pipeline (loop, decode,
features, float64 statistics) in images/s and as a fraction of the card's peak at
1,928 GFLOP per image (SPEC 8); the projected FID-50k time. A stage that fails prints
``FAILED`` and the run goes on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from bench_common import (
    median_and_spread,
    nat_forward_gflop,
    published_strategy,
    random_nat,
    timed,
    zeros_first_three,
)
from gpu_parts import (
    FID_SAMPLES,
    PIPELINE_GFLOP_PER_IMAGE,
    Float64Stats,
    Run,
    Sizes,
    build_features,
    card_peak,
    choose_sizes,
    frechet_seconds,
    matmul_tflops,
    peak_memory,
)
from reference_loop import reference_style_tokens
from torch import Tensor, nn

from nat_core.compiled import CompiledModule
from nat_core.image_path import FastDecoder, decode_tokens, standard_features, tokens_to_features
from nat_core.model import NATransformer
from nat_core.sampler import generate_tokens
from nat_core.seeding import derive_seed
from nat_core.speed import SpeedOptions, fastest_attention, to_device_async
from nat_core.vqgan import VQGAN


class Loops:
    """The decoding loops on one model, labels and chunked generators as an evaluation
    draws them."""

    def __init__(self, model: NATransformer, sizes: Sizes, device: torch.device) -> None:
        self.model = model
        self.sizes = sizes
        self.device = device
        self.labels = torch.arange(sizes.batch) % sizes.classes
        self.tokens_per_side = sizes.nat["img_size"]

    def generators(self, seed: int) -> list[torch.Generator]:
        chunks = self.sizes.batch // self.sizes.chunk
        return [
            torch.Generator(device=self.device).manual_seed(derive_seed(seed, i))
            for i in range(chunks)
        ]

    def ours(self, token_model: Any, strategy: Any, seed: int, dtype: torch.dtype | None) -> Tensor:
        return generate_tokens(
            token_model,
            strategy,
            to_device_async(self.labels, self.device),
            seq_len=self.model.seq_len,
            mask_id=self.model.mask_id,
            null_label=self.sizes.classes,
            generator=self.generators(seed),
            autocast_dtype=dtype,
        )

    def reference(self, strategy: Any, seed: int) -> Tensor:
        return reference_style_tokens(
            self.model,
            strategy,
            self.labels.to(self.device),
            seq_len=self.model.seq_len,
            mask_id=self.model.mask_id,
            null_label=self.sizes.classes,
            generator=torch.Generator(device=self.device).manual_seed(seed),
            host_rng=np.random.default_rng(seed),
            autocast_dtype=torch.float16,
        )


def repeated(
    fn: Callable[[int], Any], repeats: int, device: torch.device, memory: list[str]
) -> tuple[float, float, float, Any]:
    """Warm-up call, then ``repeats`` timed calls (seeds 1..repeats): median, min, max
    seconds and the first timed call's result."""
    fn(0)
    seconds, first = [], None
    with peak_memory(device, memory):
        for repeat in range(1, repeats + 1):
            elapsed, result = timed(lambda r=repeat: fn(r), device)
            seconds.append(elapsed)
            first = result if first is None else first
    return (*median_and_spread(seconds), first)


def report(
    name: str,
    images: int,
    timing: tuple[float, float, float, Any],
    memory: list[str],
    extra: Callable[[float], str] = lambda rate: "",
) -> float:
    """One ``stage`` line; returns images/s."""
    median, low, high, _ = timing
    rate = images / median
    print(
        f"stage {name}: {rate:.1f} images/s (median {median:.3f} s per {images} images, "
        f"range {low:.3f}-{high:.3f}) | peak memory {memory[0]}{extra(rate)}",
        flush=True,
    )
    return rate


def loop_stages(
    run: Run, loops: Loops, sizes: Sizes, backend: str, mode: str | None
) -> dict[str, Any]:
    device, bf16 = run.device, torch.bfloat16
    published = published_strategy()
    zeros = zeros_first_three(published)
    gflop = nat_forward_gflop(sizes.nat)
    results: dict[str, Any] = {}

    def measure(key: str, name: str, fn: Callable[[int], Tensor], forwards: int) -> None:
        memory: list[str] = []
        timing = repeated(fn, sizes.repeats, device, memory)
        rate = report(
            name,
            sizes.batch,
            timing,
            memory,
            lambda r: f" | NAT {r * forwards * gflop / 1e3:.1f} TFLOP/s ({forwards} forwards)",
        )
        results[key] = (rate, timing[3])

    def ours_forwards(strategy: Any) -> int:
        return sum(1 if w == 0.0 else 2 for w in strategy.cfg_scales)

    run.stage(
        "loop eager",
        lambda: measure(
            "eager",
            "loop eager bf16",
            lambda s: loops.ours(loops.model, published, s, bf16),
            ours_forwards(published),
        ),
    )
    run.stage(
        "loop reference-style",
        lambda: measure(
            "reference",
            "loop reference-style fp16 (two passes, host noise, sort)",
            lambda s: loops.reference(published, s),
            2 * published.steps,
        ),
    )
    compiled = CompiledModule(loops.model, backend=backend, mode=mode)
    results["compiled_module"] = compiled
    run.stage(
        "loop compiled",
        lambda: measure(
            "compiled",
            f"loop compiled bf16 (torch.compile, backend {backend})",
            lambda s: loops.ours(compiled, published, s, bf16),
            ours_forwards(published),
        ),
    )
    run.stage(
        "loop compiled, first three w = 0",
        lambda: measure(
            "zeros",
            "loop compiled bf16, first three guidance scales 0",
            lambda s: loops.ours(compiled, zeros, s, bf16),
            ours_forwards(zeros),
        ),
    )
    print(
        f"compile: NAT {compiled.total_compile_seconds:.1f} s over "
        f"{len(compiled.compile_seconds)} input shapes",
        flush=True,
    )
    if "eager" in results and "compiled" in results:
        eager_tokens, compiled_tokens = results["eager"][1], results["compiled"][1]
        same = (eager_tokens == compiled_tokens).float().mean().item()
        rows = (eager_tokens == compiled_tokens).all(dim=1).float().mean().item()
        print(
            f"agreement: compiled vs eager, bf16, same noise: {100 * same:.2f}% of tokens equal, "
            f"{100 * rows:.1f}% of sequences identical",
            flush=True,
        )
    return results


def decode_stages(
    run: Run, vqgan: VQGAN, tokens: Tensor, sizes: Sizes, backend: str, mode: str | None
) -> FastDecoder | None:
    """VQGAN decode of one sampling batch in bf16: eager, then channels-last + compiled,
    per decode micro-batch size. Returns the fast decoder (compiled kernels kept)."""
    device, side = run.device, sizes.nat["img_size"]
    eager = FastDecoder(vqgan, SpeedOptions())

    def decode_all(decoder: FastDecoder, micro: int) -> list[Tensor]:
        return [
            decode_tokens(decoder, part, tokens_per_side=side, autocast_dtype=torch.bfloat16)
            for part in tokens.split(micro)
        ]

    def measure(label: str, decoder: FastDecoder, micro: int) -> None:
        memory: list[str] = []
        timing = repeated(lambda _: decode_all(decoder, micro), sizes.repeats, device, memory)
        report(f"VQGAN decode {label}, micro-batch {micro}", sizes.batch, timing, memory)

    for micro in sizes.decode_batches:
        run.stage(f"decode eager {micro}", lambda m=micro: measure("eager bf16", eager, m))
    # Converts the decoder to channels-last in place: after every eager measurement.
    options = SpeedOptions(
        channels_last=True, compile_decoder=True, compile_backend=backend, compile_mode=mode
    )
    fast = run.stage("channels-last decoder", lambda: FastDecoder(vqgan, options))
    if fast is None:
        return None
    for micro in sizes.compiled_decode_batches:
        run.stage(
            f"decode compiled {micro}",
            lambda m=micro: measure("channels-last + compiled bf16", fast, m),
        )
    print(
        f"compile: VQGAN decoder {fast.compile_seconds:.1f} s over "
        f"{len(fast.decoder.compile_seconds)} input shapes",  # type: ignore[union-attr]
        flush=True,
    )
    return fast


def inception_stage(run: Run, features: nn.Module, images: Tensor, sizes: Sizes) -> None:
    def featurise() -> list[Tensor]:
        return [
            standard_features(features, part) for part in images.split(sizes.pipeline_decode_batch)
        ]

    memory: list[str] = []
    timing = repeated(lambda _: featurise(), sizes.repeats, run.device, memory)
    report(
        f"Inception fp32, micro-batch {sizes.pipeline_decode_batch}",
        sizes.batch,
        timing,
        memory,
    )


def pipeline_stage(
    run: Run,
    loops: Loops,
    compiled: CompiledModule,
    decoder: FastDecoder,
    features: nn.Module,
    sizes: Sizes,
) -> float:
    """Labels -> compiled loop -> micro-batched decode -> fp32 features -> float64 stats,
    batch after batch as an evaluation runs them; the host syncs only at the end."""
    published = published_strategy()
    stats = Float64Stats(int(features.feature_dim), run.device)

    def one_batch(seed: int) -> None:
        tokens = loops.ours(compiled, published, seed, torch.bfloat16)
        stats.update(
            tokens_to_features(
                decoder,
                features,
                tokens,
                tokens_per_side=loops.tokens_per_side,
                autocast_dtype=torch.bfloat16,
                decode_batch=sizes.pipeline_decode_batch,
            )
        )

    one_batch(0)
    memory: list[str] = []
    with peak_memory(run.device, memory):
        seconds, _ = timed(
            lambda: [one_batch(i + 1) for i in range(sizes.pipeline_batches)], run.device
        )
    images = sizes.batch * sizes.pipeline_batches
    return report(
        f"whole pipeline (loop compiled, decode micro-batch {sizes.pipeline_decode_batch} "
        "channels-last + compiled, Inception fp32, float64 statistics)",
        images,
        (seconds, seconds, seconds, None),
        memory,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--batch", type=int, default=250, help="sampling batch (2 chunks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--features", choices=("auto", "pytorch-fid", "torchvision"), default="auto"
    )
    parser.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default: inductor; eager with --smoke, to stay quick)",
    )
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode")
    parser.add_argument("--budget-s", type=float, default=390.0, help="later stages are skipped")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_grad_enabled(False)
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    backend = args.compile_backend or ("eager" if args.smoke else "inductor")
    if args.smoke:
        torch.set_num_threads(1)  # tiny tensors: threads only contend with other processes
    sizes = choose_sizes(args)
    run = Run(device, deadline=start + args.budget_s)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {name} | torch {torch.__version__} | cuda {torch.version.cuda} | "
        f"smoke {args.smoke} | batch {sizes.batch} | compile backend {backend} "
        f"mode {args.compile_mode} | "
        f"cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}",
        flush=True,
    )
    if device.type == "cpu" and not args.smoke:
        print("warning: no CUDA device; these are CPU figures at full size", flush=True)
    measured = run.stage("matmul", lambda: matmul_tflops(device, sizes.matmul_n))
    peak = card_peak(name)
    print(
        f"matmul: bf16 {sizes.matmul_n}^3 {measured or float('nan'):.3f} TFLOP/s measured; "
        f"card bf16 dense peak {f'{peak:.1f} TFLOP/s' if peak else 'unknown'}",
        flush=True,
    )

    model = random_nat(sizes.nat).to(device)
    attention = fastest_attention(device)
    model.set_attention(attention)
    vqgan = VQGAN(**sizes.vqgan).eval().requires_grad_(False).to(device)
    features, description = build_features(args.features, device)
    features.requires_grad_(False)
    print(
        f"attention: {attention} for both loops (xformers installed: "
        f"{importlib.util.find_spec('xformers') is not None})\nfeatures: {description}",
        flush=True,
    )
    loops = Loops(model, sizes, device)
    results = loop_stages(run, loops, sizes, backend, args.compile_mode)
    tokens = (
        results["eager"][1]
        if "eager" in results
        else loops.ours(model, published_strategy(), 0, None)
    )
    fast = decode_stages(run, vqgan, tokens, sizes, backend, args.compile_mode)
    images = torch.cat(
        [
            decode_tokens(
                vqgan.decode, p, tokens_per_side=loops.tokens_per_side, autocast_dtype=None
            )
            for p in tokens.split(sizes.pipeline_decode_batch)
        ]
    )
    run.stage("inception", lambda: inception_stage(run, features, images, sizes))
    rate = None
    if fast is not None:
        rate = run.stage(
            "whole pipeline",
            lambda: pipeline_stage(run, loops, results["compiled_module"], fast, features, sizes),
        )
    dim = 256 if args.smoke else 2048
    frechet = run.stage("frechet", lambda: frechet_seconds(device, dim)) or "not timed"
    summarize(results, rate, measured, peak, frechet, args.smoke)
    print(f"total wall: {time.perf_counter() - start:.1f} s", flush=True)
    if run.failures:
        print(f"failed stages: {', '.join(run.failures)}", flush=True)
        return 1
    return 0


def summarize(
    results: dict[str, Any],
    rate: float | None,
    measured: float | None,
    peak: float | None,
    frechet: str,
    smoke: bool,
) -> None:
    if "reference" in results:
        reference = results["reference"][0]
        for key in ("eager", "compiled", "zeros"):
            if key in results:
                print(
                    f"loop speed-up vs reference-style: {key} {results[key][0] / reference:.2f}x "
                    "(goal >= 1.5x)",
                    flush=True,
                )
    if rate is None:
        print("pipeline: not measured", flush=True)
        return
    tflops = rate * PIPELINE_GFLOP_PER_IMAGE / 1e3
    of_peak = (
        f"{100 * tflops / peak:.1f}% of the card's bf16 dense peak" if peak else "peak unknown"
    )
    of_matmul = f"{100 * tflops / measured:.1f}% of the measured matmul rate" if measured else ""
    note = " (smoke: tiny models, the 1,928 GFLOP/image is AutoNAT-L's)" if smoke else ""
    print(
        f"pipeline: {rate:.1f} images/s = {tflops:.1f} TFLOP/s at 1,928 GFLOP/image: {of_peak}, "
        f"{of_matmul}; goal >= 250 images/s {'met' if rate >= 250 else 'not met'}{note}",
        flush=True,
    )
    timed_frechet = frechet.replace(".", "", 1).isdigit()
    frechet_s = float(frechet) if timed_frechet else 0.0
    print(
        f"projected FID-50k: {FID_SAMPLES / rate + frechet_s:.1f} s = 50,000 images at "
        f"{rate:.1f} images/s + Frechet distance {frechet}{' s' if timed_frechet else ''} "
        "(goal <= 200 s)",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
