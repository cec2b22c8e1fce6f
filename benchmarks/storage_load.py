"""Storage time per trial with 1 and 8 worker processes on PostgreSQL (SPEC 8: <= 100 ms
with 8 workers).

Each process runs the real trial loop (``run_trial_loop``: study lock, budget reservation,
stale-trial maintenance, ask and tell) on a fake objective that sleeps ``--work`` seconds
(the GPU's share) and makes the storage calls a real trial makes (strategy, device, and per
rung the FID record, the report and the pruning check). Storage time per trial = (wall time
of the loop - time asleep in the objective) / trials, averaged over the processes: what the
service adds to each trial, waiting for the lock included.

    python benchmarks/storage_load.py [--trials 96] [--work 0.5]
        [--baseline-tree /path/to/other/checkout]

With ``--baseline-tree`` the same measurement also runs with that checkout's code (for
example ``main`` before a change), in the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _objective(work: float, asleep: list[float]):
    import optuna

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("strategy", {"manual_ratios": [x] * 7})
        trial.set_user_attr("device", "fake")
        for rung, n in enumerate((5000, 10000)):
            started = time.perf_counter()
            time.sleep(work / 2)
            asleep.append(time.perf_counter() - started)
            trial.set_user_attr("fid_per_rung", {str(n): x + rung})
            trial.set_user_attr("images_generated", n)
            trial.set_user_attr("seconds", work)
            trial.report(x + rung, step=n)
            trial.should_prune()
        return x

    return objective


def _process(url: str, name: str, work: float, out: str) -> None:
    import optuna

    from autonat_search.execution.trial_loop import run_trial_loop
    from autonat_search.storage import HeartbeatSettings, StudyLock, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat=HeartbeatSettings(interval=10, grace_period=60))
    study = optuna.load_study(study_name=name, storage=storage)
    asleep: list[float] = []
    lock = StudyLock(url, name)
    waited: list[float] = []
    acquire = lock.acquire

    def timed_acquire() -> None:
        started = time.perf_counter()
        acquire()
        waited.append(time.perf_counter() - started)

    lock.acquire = timed_acquire  # type: ignore[method-assign]
    started = time.perf_counter()
    summary = run_trial_loop(
        study,
        _objective(work, asleep),
        lock,
        storage=storage,
        stop=threading.Event(),
        poll_seconds=0.05,
    )
    wall = time.perf_counter() - started
    Path(out).write_text(
        json.dumps(
            {"trials": summary.started, "wall": wall, "asleep": sum(asleep), "lock": sum(waited)}
        )
    )


def measure(url: str, processes: int, trials: int, work: float, tmp: Path) -> list[float]:
    """Mean milliseconds per trial over ``processes`` workers sharing ``trials``: storage
    time in all, and of it the time spent waiting for the study lock."""
    import optuna

    from autonat_search.records import STUDY_BUDGET
    from autonat_search.storage import open_storage

    name = f"load-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    study.set_user_attr(STUDY_BUDGET, trials)
    context = multiprocessing.get_context("spawn")
    outs = [tmp / f"{name}-{i}.json" for i in range(processes)]
    workers = [context.Process(target=_process, args=(url, name, work, str(out))) for out in outs]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"a worker process failed (exit code {w.exitcode})")
    results = [json.loads(out.read_text()) for out in outs]
    ran = [r for r in results if r["trials"]]
    storage = sum((r["wall"] - r["asleep"]) / r["trials"] for r in ran) / len(ran)
    lock = sum(r["lock"] / r["trials"] for r in ran) / len(ran)
    return [1000 * storage, 1000 * lock]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument("--work", type=float, default=0.5, help="objective seconds per trial")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_tree is not None:
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
        baseline = json.loads(
            subprocess.run(
                command, env=env, capture_output=True, text=True, check=True
            ).stdout.splitlines()[-1]
        )
    url, drop = _database()
    try:
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        figures = {str(n): measure(url, n, args.trials, args.work, tmp) for n in args.processes}
    finally:
        drop()  # type: ignore[operator]
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"storage time per trial on PostgreSQL ({args.trials} trials, {args.work} s of work each):"
    )
    for n, (ms, lock) in figures.items():
        line = f"  {n} worker process(es): {ms:7.1f} ms, of which {lock:6.1f} waiting for the lock"
        if args.baseline_tree is not None:
            old, old_lock = baseline[n]
            line += f"   (baseline {args.baseline_tree}: {old:7.1f} ms, {old_lock:6.1f} lock)"
        print(line)
    print("  goal (SPEC 8): <= 100 ms with 8 workers")


if __name__ == "__main__":
    main()
