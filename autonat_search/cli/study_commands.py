"""Commands about a study in the storage: create it, work on it, watch it, export from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from autonat_search.cli.options import (
    CpuActorsOpt,
    OutOpt,
    RayAddressOpt,
    StorageOpt,
    StudyOpt,
)
from autonat_search.errors import ConfigError
from autonat_search.storage import (
    DEFAULT_MAX_WAIT,
    load_study,
    open_storage,
    redact,
    resolve_storage_url,
)

__all__ = ["export_best_strategy", "export_trials", "start_study", "status", "worker"]


def start_study(config_file: Path, storage: StorageOpt = None) -> None:
    """Create the study of CONFIG_FILE (idempotent) and enqueue its warm starts."""
    from autonat_search import records
    from autonat_search.config import load_study_config
    from autonat_search.study import start_study as create_or_find_study

    config = load_study_config(config_file)
    url = resolve_storage_url(storage)
    created, outcome = create_or_find_study(config, open_storage(url))
    typer.echo(f"{outcome} in {redact(url)}")
    for note in records.read_warm_start_notes(created):
        typer.echo(f"  warm start {note}")


def worker(
    study: StudyOpt,
    storage: StorageOpt = None,
    ray_address: RayAddressOpt = None,
    cpu_actors: CpuActorsOpt = 1,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="This node's copy of the study's bundle file (checked against the study)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Samples per forward pass on this node, a multiple of the study's "
            "samples.chunk (default: the study file's samples.batch_size)."
        ),
    ] = None,
    storage_wait: Annotated[
        float,
        typer.Option(help="Seconds a database outage is waited out before the worker stops."),
    ] = DEFAULT_MAX_WAIT,
) -> None:
    """Run trials of STUDY on this node's GPUs (or CPU actors) until its budget is spent."""
    from autonat_search.execution import WorkerOptions, ensure_ray, run_worker

    options = WorkerOptions(
        storage_url=resolve_storage_url(storage),
        study_name=study,
        bundle=bundle,
        batch_size=batch_size,
        storage_wait=storage_wait,
    )
    ensure_ray(ray_address)
    results = run_worker(options, cpu_actors=cpu_actors)
    for index, result in enumerate(results):
        typer.echo(f"actor {index}: " + ", ".join(f"{k} {v}" for k, v in result.items()))


def status(
    study: StudyOpt,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Trials by state, best FID so far, images generated, throughput."""
    from autonat_search.reporting.status import format_status, status_report

    report = status_report(load_study(open_storage(storage), study))
    typer.echo(json.dumps(report, indent=2) if as_json else format_status(report))


def export_best_strategy(
    study: StudyOpt,
    output: OutOpt,
    storage: StorageOpt = None,
    reevaluate: Annotated[
        int,
        typer.Option(
            help="Re-evaluate the K best on a fresh sample seed at the full sample count first."
        ),
    ] = 0,
    seed: Annotated[
        int | None,
        typer.Option(help="Sample seed of the re-evaluation (default: the study's seed + 1)."),
    ] = None,
    ray_address: RayAddressOpt = None,
    cpu_actors: CpuActorsOpt = 1,
) -> None:
    """Write the best strategy in the reference's YAML format."""
    from autonat_search.reporting import best_of_study, reevaluate_best, write_strategy_file

    found = load_study(open_storage(storage), study)
    if reevaluate < 0:
        raise ConfigError(f"--reevaluate must be >= 0, got {reevaluate}")
    if reevaluate:
        chosen, rows, _ = reevaluate_best(
            found, reevaluate, seed=seed, ray_address=ray_address, cpu_actors=cpu_actors
        )
        for row in rows:
            typer.echo(row)
    else:
        chosen = best_of_study(found)
    write_strategy_file(found, chosen, output)
    figure = f"FID@{chosen.samples} {chosen.search_fid:.4f} in the search"
    if chosen.reevaluated_fid is not None:
        figure += f", {chosen.reevaluated_fid:.4f} re-evaluated (seed {chosen.reevaluation_seed})"
    typer.echo(f"trial {chosen.trial}: {figure} -> {output}")


def export_trials(study: StudyOpt, output: OutOpt, storage: StorageOpt = None) -> None:
    """Write every trial (strategy, FID per rung, images, seconds, state) as CSV."""
    from autonat_search.reporting.export import export_trials_csv

    count = export_trials_csv(load_study(open_storage(storage), study), output)
    typer.echo(f"{count} trials -> {output}")
