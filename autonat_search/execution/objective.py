"""The multi-fidelity FID objective with common random numbers (SPEC 7).

A trial's strategy is evaluated rung by rung (e.g. 5k, 10k, 50k samples). Each rung adds
the chunks beyond the previous rung to the same merged statistics, reports FID@n as an
intermediate value at step n, and may be pruned. The trial records its strategy (reference
format), FID per rung, images generated, seconds and device (see ``records``); a finished or
pruned trial also gets its artifacts (``trial_artifacts``) and its dashboard note (``notes``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError

from autonat_search import notes, records
from autonat_search.config import StudyConfig
from autonat_search.errors import StorageError, TrialFailure
from autonat_search.execution.evaluation import BatchSizer, evaluate_chunks, sample_plan
from autonat_search.execution.heartbeat import (
    HeartbeatLost,
    TrialInterrupted,
    check_trial_alive,
)
from autonat_search.execution.progress import log_rung
from autonat_search.execution.trial_artifacts import TrialArtifacts
from autonat_search.samplers.finite_difference import trial_rungs
from autonat_search.space import SearchSpace
from nat_core.fid import fid_from_stats
from nat_core.pipeline import GeneratorBundle
from nat_core.strategy import GenerationStrategy

__all__ = ["FidObjective", "trial_strategy"]

log = logging.getLogger(__name__)


def trial_strategy(trial: optuna.Trial, space: SearchSpace) -> GenerationStrategy:
    """The strategy of a trial; an enqueued warm start carries its exact strategy."""
    strategy = space.suggest(trial)
    exact = records.read_strategy(trial)
    if exact is not None:
        strategy = exact
    records.write_strategy(trial, strategy)
    return strategy


@dataclass
class FidObjective:
    bundle: GeneratorBundle
    space: SearchSpace
    config: StudyConfig
    device_name: str
    sizer: BatchSizer = field(default_factory=BatchSizer)  # the actor's batch, kept after OOM
    artifacts: TrialArtifacts | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._evaluate(trial)
        except (optuna.TrialPruned, TrialFailure):
            raise
        except (HeartbeatLost, TrialInterrupted, UpdateFinishedTrialError, StorageError):
            raise  # the trial's own record is not this worker's to write any more
        except Exception as error:  # out of memory, a broken bundle...: say why on the trial
            records.write_fail_reason(trial, f"{type(error).__name__}: {error}")
            raise

    def _evaluate(self, trial: optuna.Trial) -> float:
        with records.grouped_writes(trial):  # its parameters, strategy and device at once
            strategy = trial_strategy(trial, self.space)
            records.write_device(trial, self.device_name)
        plan = sample_plan(self.config)
        stats = self.bundle.empty_stats()
        fids: dict[int, float] = {}
        started, done, fid = time.perf_counter(), 0, math.nan
        rungs = trial_rungs(self.config)
        for index, rung in enumerate(rungs):
            chunks = plan.chunks_between(done, rung)
            stats = stats.merge(
                evaluate_chunks(
                    self.bundle,
                    strategy,
                    chunks,
                    plan,
                    sizer=self.sizer,
                    between_batches=check_trial_alive,
                )
            )
            done = rung
            fid = fid_from_stats(stats, self.bundle.reference_mu, self.bundle.reference_sigma)
            fids[rung] = fid
            seconds = time.perf_counter() - started
            reason = None if math.isfinite(fid) else f"FID@{rung} is not finite ({fid})"
            with records.grouped_writes(trial):  # the rung's record and its report at once
                records.write_rung(trial, fids, images=done, seconds=seconds)
                if reason is None:
                    trial.report(fid, step=rung)
                else:
                    records.write_fail_reason(trial, reason)
            log_rung(trial, rung, fid, seconds)
            if reason is not None:
                raise TrialFailure(reason)
            if index < len(rungs) - 1 and trial.should_prune():
                self._present(trial, strategy, f"pruned at FID@{rung} = {fid:.4f}")
                raise optuna.TrialPruned(f"pruned at FID@{rung} = {fid:.4f}")
        self._present(trial, strategy, f"complete, FID@{rungs[-1]} = {fid:.4f}")
        return fid

    def _present(self, trial: optuna.Trial, strategy: GenerationStrategy, outcome: str) -> None:
        """Artifacts and the note of a finished or pruned trial; never fails the trial."""
        started = time.perf_counter()
        grid_path = caption = None
        if self.artifacts is not None:
            grid_path = self.artifacts.upload(trial, self.bundle, strategy)
            caption = self.artifacts.caption(self.bundle)
        try:
            record = records.TrialRecord.from_attrs(trial.number, trial.user_attrs)
            body = notes.trial_note(
                record, strategy, outcome=outcome, grid_path=grid_path, grid_caption=caption or ""
            )
            notes.write_trial_note(trial, body)
            records.write_artifact_seconds(trial, time.perf_counter() - started)
        except Exception as error:  # a note is never worth a trial
            log.warning(
                "trial %d: note not written (%s: %s)", trial.number, type(error).__name__, error
            )
