"""Storage time per trial with 1 and 8 worker processes on PostgreSQL (SPEC 8: <= 100 ms
with 8 workers).

Each process runs what ``run_study_trials`` runs for one actor, minus the GPU: the real trial
loop (``run_trial_loop``: study lock, budget reservation, stale-trial maintenance, ask and
tell) with the sampler and pruner the service builds from a study file (``worker_study``:
TPE seeded per trial; successive halving at the study's rungs), on the real ``FidObjective`` of
a T = 8 study (centred space, rungs 5k/10k/50k) whose evaluation (``evaluate_chunks``) is
replaced by a sleep of ``--work`` seconds per full trial (shared out by sample count) and a
made-up FID. So a trial makes every storage call a real one makes:
its 30 parameters, its strategy (reference format and one attribute per step), device, actor,
per rung the FID record, the report and the pruning check, and when it ends its note and
artifact time. Every process sets up (imports, storage, study) and then waits until all have,
so that no worker's trials run beside another's start-up. Storage time per trial = (wall time
of the loop - time asleep in the objective - time idle) / trials, averaged over the
processes: what the service adds to each trial, waiting for the lock and the sampler's own
work included. Idle: the loop's waits while every slot of the budget is held by a running
trial, at the study's end (a worker waits there for trials that may fail and need a re-run);
with long trials it would otherwise dominate the figure.
Queries per trial: the SQL statements all workers sent (a SQLAlchemy
``before_cursor_execute`` hook), per trial; worker CPU: the CPU time of the worker processes,
per trial; database CPU: that of the local PostgreSQL server's processes (``/proc``; its
backends' time is counted when they exit), per trial.

    python benchmarks/storage_load.py [--trials 96] [--work 0.5]
        [--baseline-tree /path/to/other/checkout]

With ``--baseline-tree`` the same measurement also runs with that checkout's code (for
example ``main`` before a change), in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
STUDY = {
    "name": "storage-load",
    "bundle": "unused.yaml",
    "steps": 8,
    "budget": {"n_trials": 1},
    "space": {"kind": "centered"},
    "sampler": {"name": "tpe", "seed": 0},
    "fidelity": {"rungs": [5000, 10000, 50000], "pruner": "successive-halving"},
}
_FEATURE_DIM = 2


class _TimedStop(threading.Event):
    """The loop's ``stop`` event, timing its waits: the loop waits on it only when every slot
    of the budget is held by a running trial (at the study's end), which is idle time, not
    storage time."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = 0.0

    def wait(self, timeout: float | None = None) -> bool:
        started = time.perf_counter()
        try:
            return super().wait(timeout)
        finally:
            self.waited += time.perf_counter() - started


class _FakeBundle:
    """What ``FidObjective`` reads of a bundle besides its evaluation: tiny statistics."""

    def __init__(self) -> None:
        import torch

        self.reference_mu = torch.zeros(_FEATURE_DIM, dtype=torch.float64)
        self.reference_sigma = torch.eye(_FEATURE_DIM, dtype=torch.float64)

    def empty_stats(self) -> Any:
        from nat_core.fid import FeatureStats

        return FeatureStats.empty(_FEATURE_DIM)


def _fake_evaluation(work: float, top_rung: int, asleep: list[float]) -> Callable[..., Any]:
    """``evaluate_chunks`` without a GPU: sleeps its share of ``work`` and returns statistics
    whose FID grows with the strategy's distance from the reference's initial schedule."""
    import torch

    from nat_core.fid import FeatureStats
    from nat_core.strategy import GenerationStrategy

    initial = torch.tensor(GenerationStrategy.reference_initial(8).to_vector())

    def evaluate_chunks(
        bundle: Any,
        strategy: Any,
        chunks: Sequence[int],
        plan: Any,
        *,
        sizer: Any = None,
        between_batches: Callable[[], None] | None = None,
    ) -> Any:
        if between_batches is not None:
            between_batches()
        started = time.perf_counter()
        time.sleep(work * len(chunks) * plan.chunk / top_rung)
        asleep.append(time.perf_counter() - started)
        shift = float(torch.linalg.vector_norm(torch.tensor(strategy.to_vector()) - initial))
        generator = torch.Generator().manual_seed(chunks[0])
        features = torch.randn(2 * len(chunks), _FEATURE_DIM, generator=generator)
        return FeatureStats.empty(_FEATURE_DIM).update(features + torch.tensor([shift, 0.0]))

    return evaluate_chunks


def _count_statements() -> list[int]:
    """A counter of the SQL statements this process sends, from now on."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    return sent


def _process(url: str, name: str, work: float, out: str, actor: str, ready: Any) -> None:
    import optuna

    from autonat_search.config import parse_study_config
    from autonat_search.execution import objective as objective_module
    from autonat_search.execution.objective import FidObjective
    from autonat_search.execution.trial_loop import run_trial_loop

    try:
        from autonat_search.execution.trial_loop import worker_study
    except ImportError:  # a --baseline-tree from before worker_study: the same study, built
        from autonat_search.samplers import build_study_sampler, study_pruner

        def worker_study(storage: Any, study_name: str, config: Any) -> optuna.Study:
            return optuna.load_study(
                study_name=study_name,
                storage=storage,
                sampler=build_study_sampler(config),
                pruner=study_pruner(config),
            )

    from autonat_search.space import build_space
    from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = parse_study_config(STUDY)
    asleep: list[float] = []
    objective_module.evaluate_chunks = _fake_evaluation(  # type: ignore[attr-defined]
        work, config.full_samples, asleep
    )
    storage = open_storage(url, heartbeat=HeartbeatSettings(interval=10, grace_period=60))
    study = worker_study(storage, name, config)
    objective = FidObjective(
        bundle=_FakeBundle(),  # type: ignore[arg-type]
        space=build_space(config.space, steps=config.steps),
        config=config,
        device_name="fake-gpu",
    )
    lock = StudyLock(url, name)
    waited: list[float] = []
    acquire = lock.acquire

    def timed_acquire() -> None:
        started = time.perf_counter()
        acquire()
        waited.append(time.perf_counter() - started)

    lock.acquire = timed_acquire  # type: ignore[method-assign]
    statements = _count_statements()
    stop = _TimedStop()
    ready.wait()  # every worker set up: none is still importing while another runs trials
    cpu = time.process_time()
    started = time.perf_counter()
    summary = run_trial_loop(
        study,
        objective,
        lock,
        storage=storage,
        stop=stop,
        actor=actor,
        poll_seconds=0.05,
    )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    Path(out).write_text(
        json.dumps(
            {
                "trials": summary.started,
                "wall": wall,
                "asleep": sum(asleep),
                "idle": stop.waited,
                "lock": sum(waited),
                "statements": statements[0],
                "cpu": cpu,
            }
        )
    )


def _database_cpu() -> float:
    """CPU seconds of this machine's PostgreSQL processes so far, exited backends included
    (the postmaster collects them); NaN where none is visible."""
    ticks, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
        if name == "postgres":
            fields = rest.split()
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
            found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else math.nan


def measure(url: str, processes: int, trials: int, work: float, tmp: Path) -> list[float]:
    """Over ``processes`` workers sharing ``trials``: mean milliseconds of storage time per
    trial, of it the time spent waiting for the study lock, and SQL statements per trial."""
    import optuna

    from autonat_search.records import STUDY_BUDGET
    from autonat_search.storage import open_storage

    name = f"load-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    study.set_user_attr(STUDY_BUDGET, trials)
    context = multiprocessing.get_context("spawn")
    outs = [tmp / f"{name}-{i}.json" for i in range(processes)]
    ready = context.Barrier(processes)
    workers = [
        context.Process(target=_process, args=(url, name, work, str(out), f"actor-{i}", ready))
        for i, out in enumerate(outs)
    ]
    database_cpu = _database_cpu()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"storage_load: a worker process failed (exit code {w.exitcode})")
    database_cpu = _database_cpu() - database_cpu
    results = [json.loads(out.read_text()) for out in outs]
    for out in outs:
        out.unlink()
    ran = [r for r in results if r["trials"]]
    storage = sum((r["wall"] - r["asleep"] - r["idle"]) / r["trials"] for r in ran) / len(ran)
    lock = sum(r["lock"] / r["trials"] for r in ran) / len(ran)
    started = sum(r["trials"] for r in ran)
    work = sum(r["asleep"] for r in ran) / started
    idle = sum(r["idle"] for r in ran) / started
    statements = sum(r["statements"] for r in ran) / started
    cpu = sum(r["cpu"] for r in ran) / started
    return [
        1000 * storage,
        1000 * lock,
        statements,
        1000 * cpu,
        1000 * database_cpu / started,
        1000 * work,
        1000 * idle,
    ]


def _database() -> tuple[str, object]:
    import sqlalchemy

    name = f"autonat_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", drop


def _shown(figure: list[float]) -> str:
    ms, lock, queries, cpu, database, work, idle = figure
    return (
        f"{ms:6.1f} ms (lock {lock:5.1f} ms), {queries:5.1f} queries, {cpu:5.1f} ms worker CPU, "
        f"{database:5.1f} ms database CPU; {work / 1000:.2f} s objective, {idle:.0f} ms idle at "
        "the end per trial"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument(
        "--work", type=float, default=0.5, help="objective seconds of a trial that is not pruned"
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_tree is not None:
        if not (args.baseline_tree / "autonat_search" / "__init__.py").is_file():
            raise SystemExit(
                f"storage_load: --baseline-tree {args.baseline_tree} is not a checkout of this "
                "project (no autonat_search/__init__.py in it)"
            )
        here = Path(__file__).resolve()
        env = {**os.environ, "PYTHONPATH": str(args.baseline_tree.resolve())}
        command = [
            sys.executable,
            str(here),
            "--trials",
            str(args.trials),
            "--work",
            str(args.work),
            "--processes",
            *map(str, args.processes),
            "--json",
        ]
        print(f"measuring the baseline {args.baseline_tree} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"storage_load: the baseline {args.baseline_tree} failed: {last}")
        baseline = json.loads(done.stdout.splitlines()[-1])
    url, drop = _database()
    try:
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        figures = {}
        for n in args.processes:
            print(f"measuring {n} worker process(es) ...", file=sys.stderr, flush=True)
            figures[str(n)] = measure(url, n, args.trials, args.work, tmp)
    finally:
        drop()  # type: ignore[operator]
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"storage time per trial on PostgreSQL ({args.trials} trials, {args.work} s of work for "
        "a trial that is not pruned):"
    )
    for n, figure in figures.items():
        line = f"  {n} worker process(es): {_shown(figure)}"
        if args.baseline_tree is not None:
            line += f"   (baseline {args.baseline_tree}: {_shown(baseline[n])})"
        print(line)
    print("  goal (SPEC 8): <= 100 ms with 8 workers")


if __name__ == "__main__":
    main()
