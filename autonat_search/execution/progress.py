"""What a running search shows: a line per trial start, rung and end (logged by the actors,
which Ray forwards to the worker's terminal), and a tqdm bar over chunks for evaluations.

Nothing here floods a log file: the trial lines are a few per trial, and the bar is drawn
only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import optuna

from autonat_search.records import TrialRecord

__all__ = [
    "PROGRESS_LOGGER",
    "chunk_progress",
    "log_rung",
    "log_trial_end",
    "log_trial_start",
    "show_progress_lines",
]

PROGRESS_LOGGER = "autonat_search.progress"
log = logging.getLogger(PROGRESS_LOGGER)


def show_progress_lines() -> None:
    """Print this process's progress lines on stderr (an actor's: Ray forwards them)."""
    if not any(getattr(h, "_autonat_progress", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._autonat_progress = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def log_trial_start(trial: optuna.Trial, device: str) -> None:
    log.info("trial %d started on %s", trial.number, device)


def log_rung(trial: optuna.Trial, rung: int, fid: float, seconds: float) -> None:
    rate = rung / seconds if seconds > 0 else 0.0
    log.info("trial %d: FID@%d = %.4f (%.1f images/s)", trial.number, rung, fid, rate)


def log_trial_end(trial: optuna.trial.FrozenTrial) -> None:
    record = TrialRecord.from_frozen(trial)
    seconds = f" after {record.seconds:.0f} s" if record.seconds is not None else ""
    pruned = trial.state == optuna.trial.TrialState.PRUNED  # its value is its last rung's
    if record.fid_per_rung and (pruned or record.value is None):
        rung = max(record.fid_per_rung)
        outcome = f"at FID@{rung} = {record.fid_per_rung[rung]:.4f}"
    elif record.value is not None:
        outcome = f"FID {record.value:.4f}"
    else:
        outcome = record.fail_reason or "no FID"
    log.info("trial %d %s: %s%s", trial.number, trial.state.name, outcome, seconds)


@contextmanager
def chunk_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` chunks on a terminal; yields ``advance(chunks_done)``."""
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=description,
        unit="chunk",
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        yield bar.update
