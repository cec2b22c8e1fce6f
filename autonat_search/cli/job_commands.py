"""Jobs on this node's devices outside a stored study: one FID evaluation, the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from autonat_search.cli.options import CpuActorsOpt, RayAddressOpt
from autonat_search.errors import ConfigError

__all__ = ["demo", "evaluate"]


Labels = Literal["balanced", "uniform"]  # config.LABEL_MODES
Precision = Literal["fp32", "bf16", "fp16"]  # config.PRECISIONS
DeviceKind = Literal["cpu", "cuda"]  # config.DEVICE_KINDS


def evaluate(
    bundle: Annotated[Path, typer.Option(help="Bundle file.")],
    strategy: Annotated[Path, typer.Option(help="Strategy file (reference format).")],
    n: Annotated[int, typer.Option(help="Number of samples (FID@n).")] = 50000,
    seed: Annotated[int, typer.Option(help="Sample seed.")] = 0,
    chunk: Annotated[int, typer.Option(help="Samples per chunk (labels + generator).")] = 125,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Samples per forward pass, a multiple of --chunk (default: 2 chunks)."),
    ] = None,
    labels: Annotated[
        Labels, typer.Option(help="Class labels: balanced (cycling) or uniform (random).")
    ] = "balanced",
    precision: Annotated[Precision, typer.Option(help="Autocast precision.")] = "fp32",
    device: Annotated[DeviceKind, typer.Option(help="Device of the actors.")] = "cpu",
    ray_address: RayAddressOpt = None,
    cpu_actors: CpuActorsOpt = 1,
) -> None:
    """FID@N of one strategy, spread over all actors of this node, statistics merged."""
    from autonat_search.study_files import check_bundle_loads, check_steps_fit
    from nat_core.bundle_file import BundleError, read_bundle
    from nat_core.strategy import GenerationStrategy

    # The files and numbers are checked before torch is loaded, the checkpoints before Ray.
    loaded = GenerationStrategy.load(strategy)
    try:
        spec = read_bundle(bundle)
    except BundleError as error:
        raise ConfigError(f"--bundle: {error}") from error
    try:
        check_steps_fit(loaded.steps, spec)
    except ConfigError as error:
        raise ConfigError(f"{strategy}: {error}") from None
    from autonat_search.execution.evaluation import SamplePlan  # torch, Ray

    try:
        plan = SamplePlan(
            seed=seed,
            chunk=chunk,
            batch_size=batch_size or 2 * chunk,
            labels=labels,
            precision=precision,
        )
        chunks = plan.chunks_between(0, n)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    from autonat_search.execution import ensure_ray, evaluate_on_actors, local_actors
    from autonat_search.execution.progress import chunk_progress
    from nat_core.fid import fid_from_stats, load_reference_stats

    check_bundle_loads(spec)
    mu, sigma = load_reference_stats(spec.reference_stats)
    ensure_ray(ray_address)
    with local_actors(bundle, device_kind=device, cpu_actors=cpu_actors) as actors:
        with chunk_progress(len(chunks), f"FID@{n}") as advance:
            stats = evaluate_on_actors(actors, loaded, n, plan, progress=advance)
        count = len(actors)
    fid = fid_from_stats(stats, mu, sigma)
    typer.echo(
        f"FID@{n} = {fid:.4f}  ({strategy}, {count} actor{'s' * (count != 1)}, seed {seed}, "
        f"labels {labels}, {precision})"
    )


def demo(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for the run, relative to the current folder (a new demo-* folder in it)."
        ),
    ] = Path("runs"),
    trials: Annotated[int | None, typer.Option(help="Budget instead of the study file's.")] = None,
    cpu_actors: CpuActorsOpt = 2,
) -> None:
    """The embedded default job: a real digits-demo study on this machine, end to end."""
    from autonat_search.demo import run_demo

    run_demo(out=out, trials=trials, cpu_actors=cpu_actors, echo=typer.echo)
