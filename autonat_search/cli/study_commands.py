"""Commands about a study in the storage: create it, work on it, watch it, export from it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    check_reachable,
    require_existing_store,
    resolve_storage_url,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["export_best_strategy", "export_trials", "start_study", "status", "worker"]


def _read_only_study(study: str, storage: str | None) -> optuna.Study:
    """The study, for a command that only reads: a missing embedded store is not created."""
    from autonat_search.storage import load_study, open_storage

    url = resolve_storage_url(storage)
    require_existing_store(url)
    return load_study(open_storage(url), study)


def start_study(
    config_file: Annotated[Path, typer.Argument(help="Study file (YAML).")],
    storage: StorageOpt = None,
) -> None:
    """Create the study of CONFIG_FILE (idempotent) and enqueue its warm starts."""
    from autonat_search.config import load_study_config
    from autonat_search.study_files import check_bundle_loads, check_study_files

    # Everything that needs neither torch nor Optuna first, then the storage, then the
    # bundle's checkpoints (torch), and only then anything is written.
    config = load_study_config(config_file)
    bundle = check_study_files(config, config_file)
    url = resolve_storage_url(storage)
    check_reachable(url)
    started = time.perf_counter()
    try:
        check_bundle_loads(bundle)
    except ConfigError as error:
        raise ConfigError(f"{config_file}: {error}") from error
    typer.echo(
        f"bundle {bundle.name!r}: every checkpoint loads and fits "
        f"({time.perf_counter() - started:.1f} s)"
    )
    from autonat_search import records
    from autonat_search.storage import open_storage, redact
    from autonat_search.study import start_study as create_or_find_study

    created, outcome = create_or_find_study(config, open_storage(url))
    typer.echo(f"{outcome} in {redact(url)}")
    for note in records.read_warm_start_notes(created):
        typer.echo(f"  warm start {note}")


def worker(
    study: StudyOpt,
    storage: StorageOpt = None,
    ray_address: RayAddressOpt = None,
    all_nodes: Annotated[
        bool,
        typer.Option(
            "--all-nodes",
            help="Drive the whole Ray cluster of --ray-address: actors on every node (one per "
            "GPU; CPU studies: --cpu-actors per node, default one per CPU), and on nodes that "
            "join later. The bundle path must be valid on every node.",
        ),
    ] = False,
    cpu_actors: Annotated[
        int | None,
        typer.Option(
            "--cpu-actors",
            help="CPU actors where the study runs on the CPU (default 1; with --all-nodes, "
            "per node, default one per CPU).",
        ),
    ] = None,
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
    url = resolve_storage_url(storage)
    check_reachable(url)
    require_existing_store(url)  # a worker joins a study: it never creates a store
    from autonat_search.storage import load_study, open_storage

    found = load_study(open_storage(url, max_wait=storage_wait), study)
    if batch_size is not None:  # a bad --batch-size is refused before Ray starts
        from autonat_search.study import study_config

        study_config(found).with_batch_size(batch_size)
    from autonat_search.execution import (
        WorkerOptions,
        ensure_ray,
        run_worker,
        run_worker_on_all_nodes,
        study_bundle,
    )

    options = WorkerOptions(
        storage_url=url,
        study_name=study,
        bundle=bundle,
        batch_size=batch_size,
        storage_wait=storage_wait,
    )
    # The study and this node's bundle are checked before Ray starts.
    study_bundle(found, bundle)
    ensure_ray(ray_address)
    if all_nodes:
        results = run_worker_on_all_nodes(options, cpu_actors=cpu_actors, echo=typer.echo)
    else:
        results = run_worker(options, cpu_actors=1 if cpu_actors is None else cpu_actors)
    for index, result in enumerate(results):
        typer.echo(f"actor {index}: " + ", ".join(f"{k} {v}" for k, v in result.items()))


def status(
    study: StudyOpt,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Refresh every --interval seconds until the budget is spent."),
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes with --watch.", min=0.5)
    ] = 5.0,
) -> None:
    """Trials by state, best FID so far, images generated, throughput."""
    found = _read_only_study(study, storage)
    from autonat_search.reporting.status import format_status, status_report

    def render() -> tuple[str, bool]:
        report = status_report(found)
        text = json.dumps(report, indent=2) if as_json else format_status(report)
        return text, report["finished"] >= report["budget"]

    text, done = render()
    typer.echo(text)
    if not watch:
        return
    terminal = sys.stdout.isatty()
    while not done:
        time.sleep(interval)
        previous = text
        text, done = render()
        if terminal:
            typer.echo("\033[H\033[J" + text)  # redraw in place
        elif text != previous:
            typer.echo(text)  # into a file: only what changed


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
    if reevaluate < 0:
        raise ConfigError(f"--reevaluate must be >= 0, got {reevaluate}")
    found = _read_only_study(study, storage)
    from autonat_search.reporting import best_of_study, reevaluate_best, write_strategy_file

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
    found = _read_only_study(study, storage)
    from autonat_search.reporting.export import export_trials_csv

    count = export_trials_csv(found, output)
    typer.echo(f"{count} trials -> {output}")
