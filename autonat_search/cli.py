"""The ``autonat-search`` command: one function per command, errors turned into one line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from autonat_search import cli_model
from autonat_search.errors import AutonatError, ConfigError
from autonat_search.storage import HeartbeatSettings, open_storage, redact, resolve_storage_url

app = typer.Typer(
    name="autonat-search",
    help="Search generation strategies of masked image transformers for the lowest FID.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
STATE = {"debug": False}

StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="AUTONAT_STORAGE",
        show_envvar=True,
        help="Storage URL (postgresql+psycopg2://... or sqlite:///file.db); "
        "default: the embedded sqlite:///autonat-search.db",
    ),
]
StudyOpt = Annotated[str, typer.Option("--study", "-s", help="Study name.")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join; default: start one.")
]
CpuActorsOpt = Annotated[
    int, typer.Option("--cpu-actors", help="CPU actors where the study runs on the CPU.")
]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write.")]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    STATE["debug"] = debug
    logging.basicConfig(
        level=logging.INFO if verbose or debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command("start-study")
def start_study_command(config_file: Path, storage: StorageOpt = None) -> None:
    """Create the study of CONFIG_FILE (idempotent) and enqueue its warm starts."""
    from autonat_search.config import load_study_config
    from autonat_search.study import NOTES_ATTR, start_study

    config = load_study_config(config_file)
    url = resolve_storage_url(storage)
    study, outcome = start_study(config, open_storage(url))
    typer.echo(f"{outcome} in {redact(url)}")
    for note in study.user_attrs.get(NOTES_ATTR, []):
        typer.echo(f"  warm start {note}")


@app.command()
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
    heartbeat_interval: Annotated[int, typer.Option(help="Seconds between heartbeats.")] = 30,
    grace_period: Annotated[
        int,
        typer.Option(help="Seconds without heartbeat before a trial counts as dead and is re-run."),
    ] = 120,
) -> None:
    """Run trials of STUDY on this node's GPUs (or CPU actors) until its budget is spent."""
    from autonat_search.worker import WorkerOptions, ensure_ray, run_worker

    options = WorkerOptions(
        storage_url=resolve_storage_url(storage),
        study_name=study,
        bundle=bundle,
        heartbeat=HeartbeatSettings(interval=heartbeat_interval, grace_period=grace_period),
    )
    ensure_ray(ray_address)
    results = run_worker(options, cpu_actors=cpu_actors)
    for index, result in enumerate(results):
        typer.echo(f"actor {index}: " + ", ".join(f"{k} {v}" for k, v in result.items()))


@app.command()
def status(
    study: StudyOpt,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Trials by state, best FID so far, images generated, throughput."""
    from autonat_search.export import format_status, status_report
    from autonat_search.storage import load_study

    report = status_report(load_study(open_storage(storage), study))
    typer.echo(json.dumps(report, indent=2) if as_json else format_status(report))


@app.command("export-best-strategy")
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
    from autonat_search.export import best_of_study, write_strategy
    from autonat_search.reevaluate import reevaluate_best
    from autonat_search.storage import load_study

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
    write_strategy(found, chosen, output)
    figure = f"FID@{chosen.samples} {chosen.search_fid:.4f} in the search"
    if chosen.reevaluated_fid is not None:
        figure += f", {chosen.reevaluated_fid:.4f} re-evaluated (seed {chosen.reevaluation_seed})"
    typer.echo(f"trial {chosen.trial}: {figure} -> {output}")


@app.command("export-trials")
def export_trials(study: StudyOpt, output: OutOpt, storage: StorageOpt = None) -> None:
    """Write every trial (strategy, FID per rung, images, seconds, state) as CSV."""
    from autonat_search.export import export_trials_csv
    from autonat_search.storage import load_study

    count = export_trials_csv(load_study(open_storage(storage), study), output)
    typer.echo(f"{count} trials -> {output}")


@app.command()
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
    from autonat_search.evaluation import SamplePlan
    from autonat_search.worker import ensure_ray, evaluate_on_actors, local_actors
    from nat_core.bundle import read_bundle
    from nat_core.fid import frechet_distance, load_reference_stats
    from nat_core.strategy import GenerationStrategy

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    try:
        plan = SamplePlan(
            seed=seed,
            chunk=chunk,
            batch_size=batch_size or 2 * chunk,
            labels=labels,
            precision=precision,
        )  # type: ignore[arg-type]
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
    fid = frechet_distance(stats.mean(), stats.covariance(), mu, sigma)
    typer.echo(
        f"FID@{n} = {fid:.4f}  ({strategy}, {count} actors, seed {seed}, "
        f"labels {labels}, {precision})"
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the run (a new demo-* folder).")] = Path(
        "runs"
    ),
    trials: Annotated[int | None, typer.Option(help="Budget instead of the study file's.")] = None,
    cpu_actors: CpuActorsOpt = 2,
) -> None:
    """The embedded default job: a real digits-demo study on this machine, end to end."""
    from autonat_search.demo import run_demo

    run_demo(out=out, trials=trials, cpu_actors=cpu_actors, echo=typer.echo)


app.command("pretrain")(cli_model.pretrain)
app.command("tokenize")(cli_model.tokenize)
app.command("fid-stats")(cli_model.fid_stats)
app.command("build-digits-demo")(cli_model.build_digits_demo)


def run() -> None:
    """Console entry point: every expected error is one line on stderr and exit code 1."""
    try:
        app(standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except (AutonatError, ValueError, FileNotFoundError) as error:
        if STATE["debug"]:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    run()
