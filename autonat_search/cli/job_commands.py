"""Jobs on this node's devices outside a stored study: one FID evaluation, the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autonat_search.cli.options import CpuActorsOpt, RayAddressOpt
from autonat_search.errors import ConfigError

__all__ = ["demo", "evaluate"]


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
    labels: Annotated[str, typer.Option(help="balanced | uniform")] = "balanced",
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | fp16")] = "fp32",
    device: Annotated[str, typer.Option(help="cuda | cpu")] = "cpu",
    ray_address: RayAddressOpt = None,
    cpu_actors: CpuActorsOpt = 1,
) -> None:
    """FID@N of one strategy, spread over all actors of this node, statistics merged."""
    from autonat_search.execution import SamplePlan, ensure_ray, evaluate_on_actors, local_actors
    from nat_core.bundle import read_bundle
    from nat_core.fid import fid_from_stats, load_reference_stats
    from nat_core.strategy import GenerationStrategy

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    try:
        plan = SamplePlan(
            seed=seed,
            chunk=chunk,
            batch_size=batch_size or 2 * chunk,
            labels=labels,
            precision=precision,  # type: ignore[arg-type]  # checked by SamplePlan
        )
        plan.chunks_between(0, n)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    loaded = GenerationStrategy.load(strategy)
    spec = read_bundle(bundle)  # missing files reported before Ray starts
    mu, sigma = load_reference_stats(spec.reference_stats)
    ensure_ray(ray_address)
    with local_actors(bundle, device_kind=device, cpu_actors=cpu_actors) as actors:
        stats = evaluate_on_actors(actors, loaded, n, plan)
        count = len(actors)
    fid = fid_from_stats(stats, mu, sigma)
    typer.echo(
        f"FID@{n} = {fid:.4f}  ({strategy}, {count} actors, seed {seed}, "
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
