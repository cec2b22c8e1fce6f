"""The multi-fidelity FID objective with common random numbers (SPEC 7).

A trial's strategy is evaluated rung by rung (e.g. 5k, 10k, 50k samples). Each rung adds
the chunks beyond the previous rung to the same merged statistics, reports FID@n as an
intermediate value at step n, and may be pruned. The trial records its strategy (reference
format), FID per rung, images generated, seconds and device (see ``records``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError

from autonat_search import records
from autonat_search.config import StudyConfig
from autonat_search.errors import StorageError, TrialFailure
from autonat_search.execution.evaluation import BatchSizer, evaluate_chunks, sample_plan
from autonat_search.execution.heartbeat import (
    HeartbeatLost,
    TrialInterrupted,
    check_trial_alive,
)
from autonat_search.space import SearchSpace
from nat_core.fid import fid_from_stats
from nat_core.pipeline import GeneratorBundle
from nat_core.strategy import GenerationStrategy

__all__ = ["FidObjective", "trial_strategy"]


def trial_strategy(trial: optuna.Trial, space: SearchSpace) -> GenerationStrategy:
    """The strategy of a trial; an enqueued warm start carries its exact strategy."""
    strategy = space.suggest(trial)
    exact = records.read_strategy(trial)
    if exact is not None:
        return exact
    records.write_strategy(trial, strategy)
    return strategy


@dataclass
class FidObjective:
    bundle: GeneratorBundle
    space: SearchSpace
    config: StudyConfig
    device_name: str
    sizer: BatchSizer = field(default_factory=BatchSizer)  # the actor's batch, kept after OOM

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
        strategy = trial_strategy(trial, self.space)
        plan = sample_plan(self.config)
        records.write_device(trial, self.device_name)
        stats = self.bundle.empty_stats()
        fids: dict[int, float] = {}
        started, done, fid = time.perf_counter(), 0, math.nan
        rungs = self.config.fidelity.rungs
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
            records.write_rung(trial, fids, images=done, seconds=time.perf_counter() - started)
            if not math.isfinite(fid):
                reason = f"FID@{rung} is not finite ({fid})"
                records.write_fail_reason(trial, reason)
                raise TrialFailure(reason)
            trial.report(fid, step=rung)
            if index < len(rungs) - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at FID@{rung} = {fid:.4f}")
        return fid
