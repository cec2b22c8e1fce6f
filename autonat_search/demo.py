"""The embedded default job: a real study of the digits demo on this machine.

An embedded store in a fresh run folder, a local Ray cluster with CPU actors, the study of
the package's ``demo_data/studies/digits_demo.yaml`` (its bundle is ``demo_data/bundles/``, so
the demo runs from any installation; a checkout links ``studies/`` and ``bundles/`` to them);
at the end the best strategy against the reference's initial
schedule, and the best strategy exported in the reference's format.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.resources
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from autonat_search.config import ArtifactsConfig, load_study_config
from autonat_search.errors import ConfigError, StudyError
from autonat_search.execution import WorkerOptions, ensure_ray, run_worker
from autonat_search.records import TrialRecord
from autonat_search.reporting import (
    format_status,
    reevaluate_best,
    search_figure,
    status_report,
    write_strategy_file,
)
from autonat_search.storage import open_storage
from autonat_search.study import start_study

__all__ = ["demo_study_file", "run_demo", "status_command"]


def demo_study_file() -> Path:
    """The demo's study file, shipped inside the package with its bundle."""
    resource = importlib.resources.files("autonat_search").joinpath(
        "demo_data", "studies", "digits_demo.yaml"
    )
    # The study names its bundle by a relative path: the files must be real files.
    if not isinstance(resource, Path) or not resource.is_file():
        raise ConfigError(f"the demo study file is missing from the installation: {resource}")
    return resource


def _new_run_dir(out: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (out / f"demo-{stamp}").resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the demo's run folder {run_dir} ({error.strerror}); "
            "choose a writable one with --out"
        ) from None
    return run_dir


def _initial_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    for trial in study.get_trials(deepcopy=False):
        finished = trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if TrialRecord.from_frozen(trial).warm_start == "reference-initial" and finished:
            return trial
    raise StudyError("the reference-initial warm start did not finish")


def status_command(url: str, study: str) -> str:
    """The command that shows a study's status (what the demo suggests at its end)."""
    return f"autonat-search status --study {shlex.quote(study)} --storage {shlex.quote(url)}"


def run_demo(
    *, out: Path, trials: int | None, cpu_actors: int, echo: Callable[[str], None] = print
) -> dict[str, float]:
    """Run the demo study in a new ``out/demo-*`` folder; returns the fresh-sample FIDs of
    the initial schedule and of the best strategy, and the seconds taken."""
    config = load_study_config(demo_study_file())
    if trials is not None:
        if trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {trials}")
        config = config.with_budget(trials)
    run_dir = _new_run_dir(out)
    # The run's sample grids stay in its own folder, beside its store.
    config = dataclasses.replace(
        config, artifacts=ArtifactsConfig(store=str(run_dir / "artifacts"))
    )
    url = f"sqlite:///{run_dir / 'studies.db'}"
    started = time.perf_counter()
    study, _ = start_study(config, open_storage(url))
    echo(
        f"study {config.name!r}: {config.n_trials} trials of FID@{config.full_samples} "
        f"(rungs {list(config.fidelity.rungs)}), {config.sampler.name} sampler, "
        f"{cpu_actors} CPU actors; store {url}"
    )
    ensure_ray(None, num_cpus=max(2, cpu_actors))
    run_worker(WorkerOptions(storage_url=url, study_name=config.name), cpu_actors=cpu_actors)
    searched = time.perf_counter() - started
    study = optuna.load_study(study_name=config.name, storage=open_storage(url))
    echo(format_status(status_report(study)))
    initial = _initial_trial(study)
    echo(
        f"search took {searched:.0f} s; re-evaluating the 3 best and the initial schedule "
        f"on fresh samples (seed {config.samples.seed + 1})"
    )
    best, rows, fresh = reevaluate_best(study, 3, cpu_actors=cpu_actors, also=[initial])
    for row in rows:
        echo(f"  {row}")
    exported = write_strategy_file(study, best, run_dir / "best_strategy.yaml")
    n = best.samples
    initial_fresh = fresh[initial.number]
    assert best.reevaluated_fid is not None
    echo(f"reference initial schedule: FID@{n} = {initial_fresh:.3f} ({search_figure(initial)})")
    echo(
        f"best strategy, trial {best.trial}: FID@{n} = {best.reevaluated_fid:.3f} "
        f"(search seed: {best.search_fid:.3f}), "
        f"{(1 - best.reevaluated_fid / initial_fresh) * 100:.1f}% lower on fresh samples"
    )
    echo(f"exported -> {exported}")
    elapsed = time.perf_counter() - started
    echo(f"finished in {elapsed:.0f} s; inspect with: {status_command(url, config.name)}")
    return {"initial": initial_fresh, "best": best.reevaluated_fid, "seconds": elapsed}
